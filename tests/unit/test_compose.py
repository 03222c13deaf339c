"""docker-compose.yml against the code: commands exist, variables are read, ports line up.

There is no container engine on the build machines, so this is how the compose file is kept
right: every check below compares it with the code it starts.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer.main
import yaml
from cryptography import x509
from typer.testing import CliRunner

from hivewire.cli import app
from hivewire.cli.compose_tokens import compose_token_specs, token_file
from hivewire.cli.demo import DEMO_AGENTS, demo_capabilities
from hivewire.cli.supervisor import UpConfig
from hivewire.cli.up_auth import agent_token_name
from hivewire.core.defaults import DEFAULT_GATEWAY_ADDR
from hivewire_services.common.config import CommonSettings, env_names, load_settings
from hivewire_services.common.server import check_transport
from hivewire_services.gateway.commands import CommandCatalog
from hivewire_services.gateway.config import GatewaySettings
from tests.compose_files import ROOT, load_compose, parse_dockerfile, readme_compose_commands
from tests.settings import SERVICE_SETTINGS

OTEL_VARIABLES = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_BSP_SCHEDULE_DELAY",
}
OURS = ("registry", "coordinator", "gateway", "agent-1", "agent-2")
GRPC_SERVICES = ("registry", "coordinator", "gateway")
AGENTS = ("agent-1", "agent-2")
# The container health probe: grpc and the health stubs only, not the CLI.
PROBE = ["python", "-m", "hivewire.core.healthprobe"]
# Read by the agent SDK itself (hivewire.core.defaults), not by any service's settings.
SDK_VARIABLES = {
    "HIVEWIRE_AGENT_METRICS_PORT",
    "HIVEWIRE_AGENT_RUNNING_REPORT_AFTER",
    "HIVEWIRE_TOKEN_FILE",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def test_the_stack_has_every_part(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "jaeger", "prometheus", *OURS}
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", services["jaeger"]["image"])
    assert "4317" in [str(p) for p in services["jaeger"]["expose"]]


def test_one_image_for_every_python_service(services: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert {services[name]["build"] for name in OURS} == {"."}


def _check_command(argv: list[str]) -> None:
    if argv[:2] == ["python", "-m"]:
        module = argv[2]
        spec = importlib.util.find_spec(module)
        assert spec is not None, module
        if spec.submodule_search_locations:  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, module
        return
    assert argv[0] == "hivewire", argv
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert argv[1] in commands, f"hivewire has no command {argv[1]!r}"


def test_every_command_exists(services: dict[str, Any]) -> None:
    for name in OURS:
        _check_command(services[name]["command"])
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        _check_command(test[1:])


def test_healthchecks_use_the_light_probe(services: dict[str, Any]) -> None:
    for name in OURS:
        test = services[name]["healthcheck"]["test"]
        assert test[1:-1] == PROBE, (name, test)


def _agent_name(service: dict[str, Any]) -> str:
    argv = service["command"]
    assert argv[:3] == ["python", "-m", "hivewire.cli.demo"], argv
    assert "--capabilities" not in argv, "capabilities come from DEMO_AGENTS, not the compose file"
    return str(argv[argv.index("--name") + 1])


def test_compose_and_up_demo_start_the_demo_agents_of_one_list(services: dict[str, Any]) -> None:
    assert sorted(_agent_name(services[name]) for name in AGENTS) == sorted(DEMO_AGENTS)
    up_demo = UpConfig(gateway_addr="", registry_addr="", coordinator_addr="").demo_agents
    assert {name: tuple(caps.split(",")) for name, caps in up_demo} == DEMO_AGENTS
    assert {name: demo_capabilities(name) for name in DEMO_AGENTS} == DEMO_AGENTS


def test_compose_agents_serve_the_commands_and_tasks_the_readme_runs(
    services: dict[str, Any],
) -> None:
    offered = {c for name in AGENTS for c in demo_capabilities(_agent_name(services[name]))}
    commands = CommandCatalog(ROOT / "commands").load()
    needed = {
        f"command {name}": {step["capability"] for step in command.doc["steps"]}
        for name, command in commands.items()
    }
    readme = readme_compose_commands((ROOT / "README.md").read_text())
    needed.update({" ".join(argv[:3]): {argv[2]} for argv in readme if argv[1] == "submit"})
    assert {"command analyze-text", "hivewire submit echo"} <= set(needed)
    for what, capabilities in needed.items():
        assert capabilities <= offered, f"{what} needs {capabilities - offered}"


def test_the_image_holds_the_commands_the_gateway_serves(services: dict[str, Any]) -> None:
    image = parse_dockerfile((ROOT / "Dockerfile").read_text())
    commands_dir = PurePosixPath(_env(services["gateway"])["HIVEWIRE_COMMANDS_DIR"])
    assert image.copied_to("commands") == commands_dir
    assert commands_dir.is_relative_to(image.workdir)
    for source in ("hivewire", "services"):  # the packages `pip install .` builds
        assert image.copied_to(source) == image.workdir / source


def test_every_variable_is_one_the_code_reads(services: dict[str, Any]) -> None:
    known = set().union(SDK_VARIABLES, *map(env_names, SERVICE_SETTINGS.values()))
    for name in OURS:
        env = _env(services[name])
        for key in env:
            if key.startswith("HIVEWIRE_"):
                assert key in known, f"{name} sets {key}, which no service settings field reads"
            else:
                assert key in OTEL_VARIABLES, f"{name} sets unexpected {key}"
        load_settings(SERVICE_SETTINGS.get(name, CommonSettings), env)  # every value parses
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"


def test_addresses_and_ports_line_up(services: dict[str, Any]) -> None:
    listen = {
        name: _port(_env(services[name])[f"HIVEWIRE_{name.upper()}_LISTEN"])
        for name in GRPC_SERVICES
    }
    for name in OURS:
        env = _env(services[name])
        for target in GRPC_SERVICES:
            addr = env[f"HIVEWIRE_{target.upper()}_ADDR"]
            assert addr == f"{target}:{listen[target]}", (name, addr)
        assert env["HIVEWIRE_REDIS_URL"].startswith("redis://redis:6379/")
    for name in GRPC_SERVICES:
        assert services[name]["healthcheck"]["test"][-1] == f"127.0.0.1:{listen[name]}"
    for name in AGENTS:
        port = _env(services[name])["HIVEWIRE_AGENT_METRICS_PORT"]
        assert services[name]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/metrics"


def test_only_gateway_jaeger_ui_and_prometheus_are_published_on_loopback(
    services: dict[str, Any],
) -> None:
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"gateway", "jaeger", "prometheus"}
    gateway_port = _port(_env(services["gateway"])["HIVEWIRE_GATEWAY_LISTEN"])
    assert published["gateway"] == [f"127.0.0.1:{gateway_port}:{gateway_port}"]
    assert gateway_port == _port(DEFAULT_GATEWAY_ADDR)  # the host's CLI needs no --addr
    assert published["jaeger"] == ["127.0.0.1:16686:16686"]
    assert published["prometheus"] == ["127.0.0.1:9090:9090"]
    for name, ports in published.items():  # never every interface of the host
        for port in ports:
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes") or []:
        host, container, *_ = volume.split(":")
        out[container] = host
    return out


def test_tls_everywhere_and_no_plaintext_allowance(services: dict[str, Any]) -> None:
    for name in OURS:
        env = _env(services[name])
        assert "HIVEWIRE_INSECURE" not in env, name
        mounts = _mounts(services[name])
        config = load_settings(CommonSettings, env).tls
        assert config.dials_tls, name
        files = [config.cert, config.key, config.ca]
        assert all(files), (name, files)
        for path in files:  # each file it names is mounted read-only from ./secrets
            assert mounts.get(path, "").startswith("./secrets/"), (name, path)
        assert not any(host.endswith("ca-key.pem") for host in mounts.values()), name
        assert all(v.endswith(":ro") for v in services[name]["volumes"]), name
    for name in GRPC_SERVICES:
        env = _env(services[name])
        assert env["HIVEWIRE_TLS_CLIENT_AUTH"] == "require", name
        assert env["HIVEWIRE_TLS_CERT"].endswith("/server.pem"), name
    for name in AGENTS:
        assert _env(services[name])["HIVEWIRE_TLS_CERT"].endswith("/client.pem"), name


def test_the_cert_command_makes_files_the_services_accept(
    services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    readme = readme_compose_commands((ROOT / "README.md").read_text())
    [init] = [argv for argv in readme if argv[1:3] == ["secrets", "init"]]
    result = CliRunner().invoke(app, init[1:])
    assert result.exit_code == 0, result.output
    for name in OURS:
        env = _env(services[name])
        local = {
            k: str(tmp_path / _mounts(services[name])[v]) if v.startswith("/secrets/") else v
            for k, v in env.items()
        }
        settings = load_settings(SERVICE_SETTINGS.get(name, CommonSettings), local)
        if name in GRPC_SERVICES:  # a service may listen on 0.0.0.0 with these
            check_transport(env[f"HIVEWIRE_{name.upper()}_LISTEN"], settings)
        settings.tls.channel_credentials()  # and dial the others
    server = x509.load_pem_x509_certificate((tmp_path / "secrets" / "server.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # Every address a service or agent dials, by compose service name.
    dialed = {
        _env(services[n])[f"HIVEWIRE_{t.upper()}_ADDR"].split(":")[0]
        for n in OURS
        for t in GRPC_SERVICES
    }
    assert dialed <= set(names.get_values_for_type(x509.DNSName))
    # The host's CLI, run where the command ran, finds the client certificate and the admin
    # token.
    client_env = (tmp_path / ".hivewire" / "client.env").read_text()
    assert f"HIVEWIRE_TLS_CERT={tmp_path / 'secrets' / 'client.pem'}" in client_env
    admin = (tmp_path / "secrets" / "admin.token").read_text().strip()
    assert f"HIVEWIRE_TOKEN={admin}\n" in client_env
    # Every token file is its owner's alone; the static token file holds hashes, no secret.
    static = (tmp_path / "secrets" / "tokens.json").read_text()
    for path in (tmp_path / "secrets").glob("*.token"):
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert path.read_text().strip() not in static, path
    assert (tmp_path / "secrets" / "tokens.json").stat().st_mode & 0o777 == 0o600


def test_tokens_everywhere_each_container_mounting_only_its_own(
    services: dict[str, Any],
) -> None:
    token_mounts = {
        name: {c: h for c, h in _mounts(services[name]).items() if not h.endswith(".pem")}
        for name in OURS
    }
    for name in GRPC_SERVICES:
        env = _env(services[name])
        settings = load_settings(SERVICE_SETTINGS[name], env)
        assert settings.auth_enabled, name
        assert not settings.service_token, "the service token is mounted, not in the environment"
        wanted = {settings.service_token_file: "./secrets/service.token"}
        if name == "gateway":  # the one that imports the static token file (and may write it)
            assert isinstance(settings, GatewaySettings)
            wanted[settings.auth_tokens_file] = "./secrets/tokens.json"
        assert token_mounts[name] == wanted, name
    for name in AGENTS:
        env = _env(services[name])
        assert "HIVEWIRE_TOKEN" not in env and "HIVEWIRE_SERVICE_TOKEN_FILE" not in env, name
        agent = _agent_name(services[name])
        wanted = {env["HIVEWIRE_TOKEN_FILE"]: f"./secrets/{token_file(agent_token_name(agent))}"}
        assert token_mounts[name] == wanted, name
        assert services[name]["depends_on"]["gateway"]["condition"] == "service_healthy", name
    # The static token file names the agent tokens with the capabilities of DEMO_AGENTS.
    specs = {name: (role, caps) for name, role, caps in compose_token_specs()}
    assert specs["admin"] == ("admin", ())
    for agent, caps in DEMO_AGENTS.items():
        assert specs[agent_token_name(agent)] == ("agent", caps)


def test_dependencies_wait_for_health(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, (name, dep)
            want = "service_healthy" if "healthcheck" in services[dep] else "service_started"
            assert spec["condition"] == want, (name, dep)
    for name in (*GRPC_SERVICES, "redis"):
        assert "healthcheck" in services[name], name


def test_prometheus_scrapes_every_metrics_port(services: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    expected = set()
    for name in OURS:
        env = _env(services[name])
        assert env["HIVEWIRE_METRICS_HOST"] == "0.0.0.0"
        [port] = [v for k, v in env.items() if k.endswith("_METRICS_PORT")]
        expected.add(f"{name}:{port}")
    assert targets == expected
    mount = services["prometheus"]["volumes"][0]
    assert mount.startswith("./prometheus.yml:")
