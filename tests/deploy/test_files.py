"""The deploy files parse, and agree with each other and with the Procfile."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import dev
from dev import split_nice
from tests.deploy.promql import DEPLOY
from tests.deploy.tools import find_tool

ROOT = DEPLOY.parent
MULTIPROC_DIR = "/run/hookline/metrics"
UNITS = DEPLOY / "systemd"
#: Seconds a stop timeout must leave beyond the drain itself.
MARGIN = 5


def procfile() -> tuple[dict[str, list[str]], dict[str, int]]:
    """The Procfile's commands, and the niceness of those it starts under ``nice -n N``."""
    entries, niceness = {}, {}
    for name, command in dev.procfile().items():
        nice, entries[name] = split_nice(command)
        if nice:
            niceness[name] = nice
    return entries, niceness


#: Every process deploy/ runs, as the Procfile (or SPEC section 2) has it.
#: Containers run one process each, so only hosts that share CPUs between
#: processes (the Procfile's runner, systemd) need NICENESS.
COMMANDS, NICENESS = procfile()
PROCESSES = {**COMMANDS, "metrics": ["python", "-m", "actors.metrics_server"]}


def drain_seconds(argv: list[str]) -> float:
    """How long the process may take to stop after SIGTERM."""
    if "--worker-shutdown-timeout" in argv:
        return int(argv[argv.index("--worker-shutdown-timeout") + 1]) / 1000
    if Path(argv[0]).name == "gunicorn":
        match = re.search(r"^graceful_timeout\s*=\s*(\d+)", (DEPLOY / "gunicorn.conf.py").read_text(), re.M)
        assert match, "deploy/gunicorn.conf.py sets no graceful_timeout"
        return int(match.group(1))
    return 0


def unwrap(argv: list[str]) -> list[str]:
    """The real command of ``sh -c '... && exec CMD'``, or ``argv`` itself."""
    if argv[:2] == ["sh", "-c"] or argv[:2] == ["/bin/sh", "-c"]:
        script = argv[2]
        assert "exec " in script, f"{script!r}: exec the process, so it gets SIGTERM itself"
        return shlex.split(script.rsplit("exec ", 1)[1])
    return argv


def role(argv: list[str]) -> str:
    """Which Procfile process ``argv`` runs; fails the test if none matches exactly."""
    command = [Path(argv[0]).name, *argv[1:]]
    for name, expected in PROCESSES.items():
        if command == expected:
            return name
    pytest.fail(f"{shlex.join(argv)} matches no process of the Procfile: {PROCESSES}")


def test_every_yaml_file_parses() -> None:
    paths = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
    assert len(paths) >= 10
    for path in paths:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents, f"{path} is empty"


def test_known_configuration_names_only() -> None:
    # A misspelt variable is silently ignored: every name deploy/ sets must be one Hookline reads.
    read = set()
    for source in (ROOT / "hookline" / "config.py", DEPLOY / "gunicorn.conf.py"):
        read |= set(re.findall(r"[\"']([A-Z][A-Z0-9_]+)[\"']", source.read_text()))
    read |= {"PROMETHEUS_MULTIPROC_DIR"}
    assert {"REDIS_URL", "BROKER_URL", "PORT", "HOOKLINE_METRICS_PORT"} <= read
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    used = {
        name: "compose.yml"
        for service in compose["services"].values()
        if service.get("image", "").startswith("hookline")
        for name in service.get("environment", {})
    }
    used |= {name: "k8s/configmap.yaml" for name in yaml.safe_load((DEPLOY / "k8s/configmap.yaml").read_text())["data"]}
    example = (UNITS / "env.example").read_text()
    used |= {name: "systemd/env.example" for name in re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M)}
    unknown = {name: where for name, where in used.items() if name not in read}
    assert not unknown, unknown
    assert "REDIS_URL" in used


# -- systemd -------------------------------------------------------------------


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{path}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


SERVICES = ["hookline-web", "hookline-worker", "hookline-callbacks", "hookline-metrics",
            "hookline-index"]


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_unit_restarts_and_drains(name: str) -> None:
    unit = parse_unit(UNITS / f"{name}.service")
    service = unit["Service"]
    assert service["Restart"] == ["always"]
    assert float(service["RestartSec"][0]) > 0
    assert unit["Unit"].get("StartLimitIntervalSec") == ["0"], "never give up restarting"
    assert service["EnvironmentFile"] == ["/etc/hookline/env"]
    assert f"PROMETHEUS_MULTIPROC_DIR={MULTIPROC_DIR}" in service["Environment"]
    assert "hookline-multiproc-dir.service" in " ".join(unit["Unit"]["Requires"])
    assert "hookline-multiproc-dir.service" in " ".join(unit["Unit"]["After"])
    assert service["KillSignal"] == ["SIGTERM"]
    assert any("sweep-dead-metrics.sh" in line for line in service["ExecStopPost"])
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    argv = shlex.split(service["ExecStart"][0])
    assert argv[0].startswith("/"), "systemd wants an absolute path"
    process = role(argv)
    assert name == f"hookline-{process}"
    drain = drain_seconds(argv)
    assert float(service["TimeoutStopSec"][0]) >= drain + MARGIN
    if process != "metrics":
        # One SIGTERM to the master only: a second SIGTERM kills a Dramatiq worker undrained.
        assert service["KillMode"] == ["mixed"]
    # The job worker yields the CPU to the web, as in the Procfile: Nice= where
    # every service shares one CPU group, CPUWeight= where each has its own.
    niceness = NICENESS.get(process, 0)
    assert service.get("Nice", ["0"]) == [str(niceness)]
    # The kernel's CPU weight falls by about 1.25 times per nice level (nice 5: 335 of 1024).
    assert service.get("CPUWeight", ["100"]) == [str(round(100 * 1.25 ** -niceness))]


def test_systemd_multiproc_folder_is_emptied_once_for_all_units() -> None:
    unit = parse_unit(UNITS / "hookline-multiproc-dir.service")
    service = unit["Service"]
    assert service["Type"] == ["oneshot"] and service["RemainAfterExit"] == ["yes"]
    commands = [shlex.split(line) for line in service["ExecStart"]]
    assert ["/bin/rm", "-rf", MULTIPROC_DIR] in commands
    assert any(c[0].endswith("install") and c[-1] == MULTIPROC_DIR for c in commands)
    # web must not empty it itself: a web restart would delete the workers' files.
    web = (UNITS / "hookline-web.service").read_text()
    assert "rm -rf" not in web


def test_systemd_units_verify() -> None:
    tool = find_tool("systemd-analyze", "systemd", required_in_ci=False)
    units = sorted(str(p) for p in UNITS.glob("*.service"))
    result = subprocess.run([tool, "verify", *units], capture_output=True, text=True, timeout=60)
    # The binaries live on the target host only; anything else is a real complaint.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "/opt/hookline/" not in line]
    assert complaints == []


def test_sweep_removes_only_dead_processes_live_gauges(tmp_path: Path) -> None:
    # Given the multiprocess files of a dead process and of this live one
    dead_pid = 4_194_304 + 1  # above Linux's largest pid_max: never a live process
    live_pid = os.getpid()
    names = [f"gauge_livesum_{dead_pid}.db", f"gauge_livemax_{dead_pid}.db", f"counter_{dead_pid}.db",
             f"histogram_{dead_pid}.db", f"gauge_livesum_{live_pid}.db", f"gauge_max_{dead_pid}.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"\0" * 16)
    # When the units' ExecStopPost script runs
    result = subprocess.run(["sh", str(UNITS / "sweep-dead-metrics.sh")], capture_output=True, text=True,
                            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, timeout=30)
    assert result.returncode == 0, result.stderr
    # Then the dead process's live gauges are gone; counters, histograms and the rest stay
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db", f"gauge_livesum_{live_pid}.db",
         f"gauge_max_{dead_pid}.db"])


def test_sweep_refuses_to_run_without_the_folder() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(["sh", str(UNITS / "sweep-dead-metrics.sh")], capture_output=True, text=True,
                            env=env, timeout=30)
    assert result.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in result.stderr


# -- compose -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text())  # type: ignore[no-any-return]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """``{target: source}`` of a compose service's volumes and tmpfs mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
    for target in service.get("tmpfs", []):
        out[target] = "tmpfs"
    return out


def test_compose_services_restart_and_drain(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "web", "worker", "callbacks", "prometheus", "grafana"} <= set(services)
    roles: dict[str, list[str]] = {}
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
        if not service.get("image", "").startswith("hookline"):
            continue
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile", name
        argv = service["command"]
        process = role(unwrap(argv))
        roles.setdefault(process, []).append(name)
        grace = service.get("stop_grace_period", "10s")
        assert grace.endswith("s")
        assert float(grace[:-1]) >= drain_seconds(unwrap(argv)) + MARGIN, name
        # Each service has its own multiprocess folder, mounted where the processes look.
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == MULTIPROC_DIR
        assert MULTIPROC_DIR in mounts(service), name
        if argv[0] == "sh":
            assert f"rm -rf {MULTIPROC_DIR}/*" in argv[2], "a named volume outlives the container: empty it"
    assert set(roles) == set(PROCESSES), roles


def test_compose_metrics_sidecars_share_pid_namespace_and_folder(compose: dict[str, Any]) -> None:
    services = compose["services"]
    sidecars = {name: s for name, s in services.items() if s.get("command") == PROCESSES["metrics"]}
    assert sidecars
    for name, sidecar in sidecars.items():
        main = sidecar["pid"].removeprefix("service:")
        assert sidecar["network_mode"] == f"service:{main}", name
        assert mounts(sidecar)[MULTIPROC_DIR] == mounts(services[main])[MULTIPROC_DIR], name
        assert mounts(services[main])[MULTIPROC_DIR] != "tmpfs", "a tmpfs cannot be shared"


def test_compose_redis_persists(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "/data" in mounts(redis)


def test_compose_mounts_exist_and_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for target, source in mounts(service).items():
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            elif source != "tmpfs":
                assert source in declared, (name, source, target)


def test_compose_prometheus_scrapes_the_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = mounts(services["prometheus"])
    config_path = next(t for t, s in prometheus.items() if s == "./prometheus.yml")
    assert prometheus[str(Path(config_path).parent / "alerts.yml")] == "./alerts.yml"
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.split(":")
                assert host in services, target
                listening = [s for s in services.values()
                             if s is services[host] or s.get("network_mode") == f"service:{host}"]
                if port == "8000":
                    assert any(unwrap(s.get("command") or []) == PROCESSES["web"]
                               for s in listening), target
                else:
                    assert port == "9191" and any(
                        s.get("command") == PROCESSES["metrics"] for s in listening), target


def test_compose_grafana_provisioning(compose: dict[str, Any]) -> None:
    grafana = mounts(compose["services"]["grafana"])
    assert grafana["/etc/grafana/provisioning"] == "./grafana/provisioning"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/hookline.yml").read_text())
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert grafana[entry["options"]["path"]] == "./grafana/dashboards"
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090"
    assert source["jsonData"]["timeInterval"] == yaml.safe_load(
        (DEPLOY / "prometheus.yml").read_text())["global"]["scrape_interval"]


def test_dockerfile_copies_what_exists() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    sources = [source for line in text.splitlines() if line.startswith("COPY ")
               for source in line.split()[1:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
    for package in ("hookline", "webapp", "actors", "callbacks"):
        assert package in sources, package
    # The optional C extensions are built in the image, with a compiler that
    # does not stay in it.
    assert "requirements-fast.txt" in sources
    assert "pip install -r requirements-fast.txt" in text
    assert "apt-get purge -y --auto-remove gcc" in text


# -- Kubernetes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_kustomize_builds() -> None:
    kubectl = find_tool("kubectl", "kubectl", required_in_ci=False)
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert sorted(kinds) == ["ConfigMap", "Deployment", "Deployment", "Deployment", "Service"]


@pytest.mark.parametrize("component", ["web", "worker", "callbacks"])
def test_k8s_deployment(k8s: dict[tuple[str, str], dict[str, Any]], component: str) -> None:
    config = k8s[("ConfigMap", "hookline")]["data"]
    deployment = k8s[("Deployment", f"hookline-{component}")]
    template = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert pod.get("restartPolicy", "Always") == "Always"
    volumes = {v["name"]: v for v in pod["volumes"]}
    ports = {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) in ports.values()
    roles: dict[str, dict[str, Any]] = {}
    for container in pod["containers"]:
        assert {"configMapRef": {"name": "hookline"}} in container["envFrom"]
        mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        folder = mounted[config["PROMETHEUS_MULTIPROC_DIR"]]
        assert "emptyDir" in volumes[folder]
        argv = unwrap(container["command"])
        roles[role(argv)] = container
        assert pod["terminationGracePeriodSeconds"] >= drain_seconds(argv) + MARGIN
    if component == "web":
        web = roles["web"]
        assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("readinessProbe", "livenessProbe"):
            assert web[probe]["httpGet"]["port"] in ports
        assert ports["http"] == int(config["PORT"])
    else:
        assert set(roles) == {component, "metrics"}
        # Two containers writing files named by pid into one folder need one pid namespace.
        assert pod["shareProcessNamespace"] is True
        assert ports["metrics"] == int(config["HOOKLINE_METRICS_PORT"])


def test_k8s_service_reaches_the_web_pods(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    service = k8s[("Service", "hookline-web")]
    template = k8s[("Deployment", "hookline-web")]["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in names
