"""The address file: the gRPC address on line one, named endpoints after it."""

from __future__ import annotations

from pathlib import Path

from hivewire.core.addr_file import METRICS, bound_addr, read_addr_file, write_addr_file


def test_a_service_without_metrics_writes_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.addr"
    write_addr_file(path, "127.0.0.1:5001", metrics=None)
    assert path.read_text() == "127.0.0.1:5001\n"
    assert read_addr_file(path) == "127.0.0.1:5001"
    assert read_addr_file(path, METRICS) is None


def test_the_metrics_endpoint_is_read_by_name(tmp_path: Path) -> None:
    path = tmp_path / "coordinator.addr"
    write_addr_file(path, "127.0.0.1:5001", metrics="127.0.0.1:9100")
    assert read_addr_file(path) == "127.0.0.1:5001"
    assert read_addr_file(path, METRICS) == "127.0.0.1:9100"
    assert read_addr_file(path, "other") is None


def test_a_process_without_grpc_reports_only_its_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "agent.addr"
    write_addr_file(path, "", metrics="127.0.0.1:9100")
    assert read_addr_file(path) is None
    assert read_addr_file(path, METRICS) == "127.0.0.1:9100"


def test_no_file_and_an_empty_file_hold_no_address(tmp_path: Path) -> None:
    path = tmp_path / "x.addr"
    assert read_addr_file(path) is None
    path.write_text("")
    assert read_addr_file(path) is None
    assert read_addr_file(path, METRICS) is None


def test_a_wildcard_host_becomes_loopback() -> None:
    assert bound_addr("0.0.0.0:0", 4242) == "127.0.0.1:4242"
    assert bound_addr("10.1.2.3:0", 4242) == "10.1.2.3:4242"
