"""What a hook gets: the inherited environment allowlist and the timestamped signature."""

from __future__ import annotations

from hivewire_services.hooks.payload import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    inherited,
    sign,
    signature_headers,
    verify,
)

SECRET = b"k" * 32


def test_only_the_allowlist_is_inherited() -> None:
    env = {
        "PATH": "/bin",
        "HOME": "/home/h",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp",
        "PATHEXT": "no",
        "LC": "no",
        "HIVEWIRE_HOOK_SECRET": "no",
        "HIVEWIRE_REDIS_URL": "redis://:password@host/0",
        "AWS_SECRET_ACCESS_KEY": "no",
    }
    assert inherited(env) == {
        k: v
        for k, v in env.items()
        if k in {"PATH", "HOME", "LANG", "LC_ALL", "LC_TIME", "TZ", "TMPDIR"}
    }


def test_signature_covers_the_timestamp_and_expires() -> None:
    body = b'{"a":1}'
    headers = signature_headers(SECRET, body, now=1_764_081_234.9)
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert ts == "1764081234" and sig == sign(SECRET, ts, body)
    assert sig != sign(SECRET, "1764081235", body)
    assert verify(SECRET, body, ts, sig, now=1_764_081_234 + 300)
    assert verify(SECRET, body, ts, sig, now=1_764_081_234 - 300)  # a receiver's clock behind
    assert not verify(SECRET, body, ts, sig, now=1_764_081_234 + 301)
    assert not verify(SECRET, body, "1764081235", sig, now=1_764_081_235)
    assert not verify(SECRET, body, "soon", sig, now=1_764_081_234)
