"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here).

Every Leasehold service's command parses with the real ``leasehold`` parser; images and build contexts
exist; ports, addresses, ids, zones, volumes and dependencies agree with each other; the Dockerfile's
stages and COPY sources exist. ``tests/deploy/test_local_cluster.py`` runs the same commands as local
processes.
"""

from __future__ import annotations

import argparse
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose import ROOT, Compose, ComposeSyntaxError, load_compose, parse_subset
from tests.deploy.leasehold_parser import CommandError, parse_command

ZK_PORT = 2181
PG_PORT = 5432


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def _port(address: str) -> int:
    host, sep, port = address.rpartition(":")
    assert sep, address
    assert host, address
    assert port.isdigit(), address
    return int(port)


def _host(address: str) -> str:
    return address.rpartition(":")[0]


def _args(compose: Compose, service: str) -> argparse.Namespace:
    return parse_command(compose.command(service))


def test_the_topology_is_the_one_asked_for(compose: Compose) -> None:
    assert set(compose.document) == {"name", "services", "volumes", "secrets"}
    assert compose.by_subcommand("certs") == ["certs"]
    assert compose.by_subcommand("server") == ["server1", "server2", "server3"]
    assert compose.by_subcommand("worker") == ["worker1", "worker2"]
    assert compose.by_subcommand("frontend") == ["frontend"]
    assert set(compose.services) == {"zookeeper", "postgres", *compose.leasehold_services()}
    assert compose.services["zookeeper"]["image"] == "zookeeper:3.8"
    assert compose.services["postgres"]["image"] == "postgres:15"


def test_every_leasehold_command_parses_with_the_real_parser(compose: Compose) -> None:
    for service in compose.leasehold_services():
        args = _args(compose, service)
        assert args.command == compose.command(service)[0], service


@pytest.mark.parametrize(
    "broken",
    [
        ["server", "--zk", "zookeeper:2181", "--lisen", "0.0.0.0:7100"],
        ["worker", "--memory", "lots"],
        ["worker", "--zk", "zookeeper:2181", "--assignment", "server1:7100"],
        ["frontend", "--http"],
        ["servers"],
        [],
    ],
)
def test_the_parser_check_refuses_broken_commands(broken: list[str]) -> None:
    with pytest.raises(CommandError):
        parse_command(broken)


def test_images_and_builds_exist(compose: Compose) -> None:
    for name, spec in compose.services.items():
        assert isinstance(spec.get("image"), str), f"{name} names no image"
        assert ":" in spec["image"], f"{name}: pin a tag"
    for name in compose.leasehold_services():
        build = compose.services[name]["build"]
        context = ROOT / build["context"]
        assert context.is_dir(), name
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        assert compose.services[name]["image"] == "leasehold:latest"


def test_listen_advertise_ids_and_zones_agree(compose: Compose) -> None:
    for name in compose.by_subcommand("server"):
        args = _args(compose, name)
        assert _host(args.listen) == "0.0.0.0", name
        assert args.advertise == f"{name}:{_port(args.listen)}", name
        assert args.id == name
    for name in compose.by_subcommand("worker"):
        args = _args(compose, name)
        assert _host(args.listen) == "0.0.0.0", name
        assert args.advertise == f"{name}:{_port(args.listen)}", name
        assert args.worker_id == name
        assert args.memory >= 128
    servers = [_args(compose, n) for n in compose.by_subcommand("server")]
    workers = [_args(compose, n) for n in compose.by_subcommand("worker")]
    assert len({a.zone for a in servers}) == 3
    assert len({a.zone for a in workers}) == 2
    assert {a.zone for a in workers} <= {a.zone for a in servers}


def test_only_the_frontend_publishes_and_its_ports_match_its_flags(compose: Compose) -> None:
    published: list[int] = []
    for name, spec in compose.services.items():
        ports = spec.get("ports") or []
        if name != "frontend":
            assert not ports, f"{name} publishes ports"
            continue
        args = _args(compose, name)
        mapping = {int(p.split(":")[1]): int(p.split(":")[0]) for p in ports}
        assert set(mapping) == {_port(args.http), _port(args.grpc)}
        assert _host(args.http) == _host(args.grpc) == "0.0.0.0"
        published += mapping.values()
    assert sorted(published) == [9000, 9001]
    assert len(published) == len(set(published))


def test_coordinates_name_services_that_exist(compose: Compose) -> None:
    postgres_env = compose.services["postgres"]["environment"]
    password_file = compose.services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"]
    assert password_file == "/run/secrets/postgres-password"
    assert compose.services["postgres"]["secrets"] == ["postgres-password"]
    password = _secret(compose, "postgres-password")
    for name in compose.components():
        args = _args(compose, name)
        assert "postgresql://" not in " ".join(compose.command(name)), f"{name}: a password in argv"
        for option in ("journal_file", "code_store_file"):
            path = getattr(args, option, None)
            if path is not None:
                assert str(path).startswith("/run/secrets/"), (name, option)
                assert str(path).rpartition("/")[2] in compose.services[name]["secrets"], (name, path)
                setattr(args, option.removesuffix("_file"), _secret(compose, str(path).rpartition("/")[2]))
        for host in (args.zk or "").split("/")[0].split(","):
            assert host == f"zookeeper:{ZK_PORT}", (name, host)
        for url in (getattr(args, "journal", None), getattr(args, "code_store", None)):
            if url is None:
                continue
            parsed = urllib.parse.urlsplit(url)
            assert parsed.scheme == "postgresql", (name, url)
            assert (parsed.hostname, parsed.port) == ("postgres", PG_PORT), (name, url)
            assert parsed.username == postgres_env["POSTGRES_USER"], name
            assert parsed.password == password, name
            assert parsed.path == "/" + postgres_env["POSTGRES_DB"], name
        for address in str(getattr(args, "assignment", "") or "").split(","):
            if address:
                assert _host(address) in compose.by_subcommand("server"), (name, address)
    assert _args(compose, "worker1").code_store_file, "workers fetch code blobs from the code store"


def _secret(compose: Compose, name: str) -> str:
    """The content of a declared Docker secret's file."""
    return (ROOT / str(compose.document["secrets"][name]["file"])).read_text().strip()


def test_every_grpc_port_uses_mtls_with_its_roles_identity_only(compose: Compose) -> None:
    certs = compose.services["certs"]
    assert compose.command("certs") == ["certs", "init", "/certs", "--exist-ok"]
    roles = ("server", "frontend", "worker", "client")
    assert sorted(certs["volumes"]) == sorted(["tls-ca:/certs", *(f"tls-{r}:/certs/{r}" for r in roles)])
    for name in compose.components():
        role = compose.command(name)[0]
        args = _args(compose, name)
        assert str(args.tls_dir) == "/tls", name
        assert not args.insecure, name
        tls_mounts = [v for v in compose.services[name]["volumes"] if v.startswith("tls-")]
        assert tls_mounts == [f"tls-{role}:/tls:ro"], f"{name}: its own identity, read-only, nothing else"
        assert compose.services[name]["depends_on"]["certs"] == {"condition": "service_completed_successfully"}


def test_dependencies_exist_are_acyclic_and_wait_for_health(compose: Compose) -> None:
    graph: dict[str, list[str]] = {}
    for name, spec in compose.services.items():
        depends = spec.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use the long form with conditions"
        for target, rule in depends.items():
            assert target in compose.services, (name, target)
            assert target != name, name
            allowed = (
                ("service_completed_successfully",) if target == "certs" else ("service_started", "service_healthy")
            )
            assert rule["condition"] in allowed, (name, target)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in compose.services[target], (name, target)
        graph[name] = list(depends)
    for name in compose.components():
        needs = set(graph[name])
        if name != "frontend":
            assert {"zookeeper", "postgres"} <= needs, name
    assert set(graph["frontend"]) == {"certs", *compose.by_subcommand("server"), *compose.by_subcommand("worker")}

    state: dict[str, str] = {}

    def visit(node: str) -> None:
        assert state.get(node) != "open", f"dependency cycle through {node}"
        if state.get(node) == "done":
            return
        state[node] = "open"
        for target in graph[node]:
            visit(target)
        state[node] = "done"

    for node in graph:
        visit(node)


def _listen_port(compose: Compose, name: str) -> int | None:
    args = _args(compose, name)
    address = getattr(args, "listen", None) or getattr(args, "http", None)
    return _port(address) if address else None


def _health_port(compose: Compose, name: str) -> int | None:
    """The port whose gRPC health service answers for ``name``: a frontend's ``--grpc`` (its HTTP API
    answers signed requests only), else ``--listen``."""
    args = _args(compose, name)
    address = getattr(args, "grpc", None) or getattr(args, "listen", None)
    return _port(address) if address else None


def test_healthchecks_probe_the_service_port(compose: Compose) -> None:
    for name, spec in compose.services.items():
        if name == "certs":
            assert "healthcheck" not in spec, "a one-shot"
            continue
        test = spec["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        if name not in compose.leasehold_services():
            continue
        assert test[1:5] == ["python", "-m", "assignment.commands.probe", "grpc"], name
        assert test[5:7] == ["--tls-dir", "/tls"], f"{name}: the probe authenticates with the service's identity"
        assert test[7] == f"127.0.0.1:{_health_port(compose, name)}", name
        assert len(test) == 8, name


def test_workers_may_use_bubblewrap_and_keep_their_data(compose: Compose) -> None:
    declared = set(compose.document["volumes"])
    for name, spec in compose.services.items():
        for volume in spec.get("volumes") or []:
            source, _, target = volume.partition(":")
            assert source in declared, (name, volume)
            assert target.startswith("/"), (name, volume)
    for name in compose.by_subcommand("worker"):
        spec = compose.services[name]
        assert spec.get("privileged") is True or (
            "SYS_ADMIN" in (spec.get("cap_add") or []) and "seccomp=unconfined" in (spec.get("security_opt") or [])
        ), name
        data_dir = str(_args(compose, name).data_dir)
        mounts = [v.partition(":")[2] for v in spec.get("volumes") or []]
        assert any(data_dir.startswith(m) for m in mounts), (name, data_dir)
    for name in compose.components():
        assert compose.services[name].get("init") is True, f"{name}: an init reaps sandbox processes"


def test_functions_reach_the_frontends_lambda_api_and_nothing_else(compose: Compose) -> None:
    frontend = compose.by_subcommand("frontend")[0]
    http_port = int(_args(compose, frontend).http.rpartition(":")[2])
    for name in compose.by_subcommand("worker"):
        args = _args(compose, name)
        assert args.sandbox_network == "isolated", name
        assert args.sandbox_allow == "", f"{name}: only the Lambda endpoint, through --lambda-endpoint"
        endpoint = urllib.parse.urlsplit(args.lambda_endpoint)
        assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", frontend, http_port), name


# -- the Dockerfile


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _dockerignored(relative: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    parts = relative.strip("/").split("/")
    return any(Path(relative.strip("/")).match(p) or parts[0] == p for p in patterns)


def test_dockerfile_stages_and_copies() -> None:
    instructions = _instructions(ROOT / "Dockerfile")
    stages = [rest.split() for keyword, rest in instructions if keyword == "FROM"]
    assert [s[0] for s in stages] == ["python:3.11-slim-bookworm"] * 2
    assert [s[2] for s in stages] == ["builder", "runtime"]
    assert all(s[1].upper() == "AS" for s in stages)
    copies = [rest.split() for keyword, rest in instructions if keyword == "COPY"]
    for parts in copies:
        if parts[0].startswith("--from="):
            assert parts[0].split("=", 1)[1] == "builder"
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), source
            assert not _dockerignored(source), f"{source} is excluded by .dockerignore"
    copied = {source.rstrip("/") for parts in copies if not parts[0].startswith("--") for source in parts[:-1]}
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    maturin = config["tool"]["maturin"]
    needed = {"pyproject.toml", config["project"]["readme"], "proto", "assignment", *maturin["python-packages"]}
    assert needed <= copied, needed - copied
    assert (ROOT / maturin["manifest-path"]).is_file()
    assert maturin["manifest-path"].startswith("assignment/")
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    pinned = next(d for d in config["project"]["optional-dependencies"]["dev"] if d.startswith("maturin=="))
    assert f'"{pinned}"' in runs
    assert "bubblewrap" in runs
    assert "slirp4netns" in runs  # sandbox networks (workers/netns.py)
    assert "iproute2" in runs
    assert "maturin build --release --out /wheels" in runs
    entrypoint = next(rest for keyword, rest in instructions if keyword == "ENTRYPOINT")
    assert entrypoint == '["leasehold"]'
    assert "leasehold" in config["project"]["scripts"]
    exposed = {int(p) for keyword, rest in instructions if keyword == "EXPOSE" for p in rest.split()}
    compose = load_compose()
    ports = {_listen_port(compose, n) for n in compose.components()} | {9001}
    assert ports <= exposed


def test_dockerignore_keeps_build_outputs_out() -> None:
    for path in (".venv", ".git", "assignment/partition-core/target", "assignment/_core.so"):
        assert _dockerignored(path), path
    for path in ("assignment", "proto", "pyproject.toml", "README.md"):
        assert not _dockerignored(path), path


# -- the YAML subset reader itself


@pytest.mark.parametrize(
    "text",
    [
        "a: &anchor 1\n",
        "a: *anchor\n",
        "a: [1, 2]\n",
        "a: {b: 1}\n",
        "a: |\n  text\n",
        "a:\n\t- 1\n",
        "a: 1\na: 2\n",
        "a: yes\n",
        "a: on\n",
        "a: 1.5\n",
        "ports:\n  - 9000:9000\n",
        "a:\n   b: 1\n",
        "a:\n  - b: 1\n",
        "a:\n- 1\n",
        "a: 'single'\n",
        'a: "unterminated\n',
        'a: "x" trailing\n',
        "a:b\n",
        "  a: 1\n",
        "a: 1\n  b: 2\n",
        "",
        "- 1\n",
        "a: !!str 1\n",
        "a: ~\n",
    ],
)
def test_the_subset_reader_refuses_what_it_does_not_read_like_yaml(text: str) -> None:
    with pytest.raises(ComposeSyntaxError):
        parse_subset(text)


def test_the_subset_reader_reads_what_it_accepts() -> None:
    text = (
        "# comment\n"
        "top:\n"
        "  n: 5  # trailing\n"
        "  t: true\n"
        '  s: "a: #b"\n'
        "  plain: zone-a\n"
        "  empty:\n"
        "  list:\n"
        "    - --flag\n"
        '    - "x:y"\n'
        "    - 7\n"
    )
    assert parse_subset(text) == {
        "top": {"n": 5, "t": True, "s": "a: #b", "plain": "zone-a", "empty": None, "list": ["--flag", "x:y", 7]}
    }
