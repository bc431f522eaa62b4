"""The deployment files say what docs/operations.md promises: the rendered production
manifests are hardened, probe the right paths and leave room for the drain; the image runs
the documented command. (Schemas and lint: .ci/deploy-check, in `./dev check`.)"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = sorted(p.name for p in (ROOT / "k8s" / "overlays").iterdir() if p.is_dir())
Doc = dict[str, Any]


def render(overlay: str) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render k8s/ (kubectl kustomize)"
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def documented_command() -> list[str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"```run-command\n(.+?)\n```", text, re.DOTALL)
    assert block, "docs/operations.md has no run-command block"
    return shlex.split(block.group(1))


def image_command() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    commands = [line[4:] for line in text.splitlines() if line.startswith("CMD ")]
    assert commands, "the Dockerfile has no CMD"
    command: list[str] = json.loads(commands[-1])  # exec form: a JSON list
    return command


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _lock_pins() -> dict[str, str]:
    """requirements.lock's pins, by normalised name; each must carry at least one hash."""
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, str] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        pinned = re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry)
        if pinned:
            assert "--hash=sha256:" in entry, f"{pinned.group(1)} has no hash"
            pins[canonicalize_name(pinned.group(1))] = pinned.group(2)
    return pins


def test_the_lock_pins_every_runtime_dependency_within_pyproject_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _lock_pins()
    runtime = [Requirement(r) for r in project["dependencies"]]
    runtime += [Requirement(r) for r in project["optional-dependencies"]["otel"]]
    for requirement in runtime:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: refresh it (README.md)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}"
        )
    # The embedded database (GPL-2.0, never imported) and the dev tools stay out of the image.
    for extra in ("embedded", "check"):
        for spec in project["optional-dependencies"][extra]:
            assert canonicalize_name(Requirement(spec).name) not in pins, spec
    assert "pytest" not in pins


def test_the_image_installs_only_the_lock() -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [
        line for line in text.splitlines() if line.startswith("RUN ") and "pip install" in line
    ]
    assert installs, "the Dockerfile installs nothing"
    first = installs[0]
    assert "--require-hashes" in first, first
    assert "-r requirements.lock" in first, first
    assert all("--no-deps" in line for line in installs), installs
    assert "COPY requirements.lock" in text


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    """.dockerignore is an allowlist: every file the Dockerfile copies must be let in."""
    allowed = {
        line.strip().lstrip("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip().startswith("!")
    }
    text = (ROOT / "Dockerfile").read_text()
    copied = {
        source
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    assert copied, "the Dockerfile copies nothing"
    assert copied <= allowed, f"not in the build context (.dockerignore): {copied - allowed}"


def test_the_image_runs_the_documented_command() -> None:
    command = image_command()
    assert command == documented_command()
    assert command[:3] == ["uvicorn", "cityexchange.app:app_from_env", "--factory"]
    assert "--proxy-headers" in command
    assert int(option(command, "--timeout-graceful-shutdown")) > 0


def _pods(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened_and_no_secret_is_committed(overlay: str) -> None:
    docs = render(overlay)
    assert not [d for d in docs if d["kind"] == "Secret"]
    pods = _pods(docs)
    assert pods
    for where, pod in pods:
        assert pod["automountServiceAccountToken"] is False, where
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), where
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: no writable /tmp"  # noqa: S108


def test_production_deployment_probes_spreads_and_drains() -> None:
    docs = render("prod")
    deployment = one(docs, "Deployment", "cityexchange")
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    assert "command" not in api
    assert "args" not in api
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {
        "kubernetes.io/hostname"
    }
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    config = one(docs, "ConfigMap")["data"]
    assert config["CITYEXCHANGE_ENV"] == "prod"
    assert config["CITYEXCHANGE_PUBLIC_URL"].startswith("https://")
    drain = int(config["CITYEXCHANGE_DRAIN_SECONDS"])
    graceful = int(option(image_command(), "--timeout-graceful-shutdown"))
    assert pod["terminationGracePeriodSeconds"] > drain + graceful
    secret = next(
        e["valueFrom"]["secretKeyRef"]
        for e in api["env"]
        if e["name"] == "CITYEXCHANGE_MONGODB_URI"
    )
    assert secret["name"] == "cityexchange-mongodb"  # referenced, never committed


def test_production_scales_out_with_a_budget_and_default_deny_networking() -> None:
    docs = render("prod")
    labels = one(docs, "Deployment", "cityexchange")["spec"]["template"]["metadata"]["labels"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "no default-deny NetworkPolicy"
    ingress_ports = {
        port["port"]
        for p in policies
        for rule in p["spec"].get("ingress", [])
        for port in rule.get("ports", [])
    }
    assert ingress_ports == {8000}
    egress_ports = {
        port["port"]
        for p in policies
        for rule in p["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }
    assert {27017, 53} <= egress_ports
    ingress = one(docs, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


# Gateway API's HTTPRoute, as the gateway.networking.k8s.io/v1 CRD defines it (standard
# channel): no registry package ships the CRD's schema for kubernetes-validate, so its
# structure is checked here, strictly: unknown fields, wrong types, enums, patterns, limits.
_DNS_LABELS = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_HOSTNAME = re.compile(rf"^(\*\.)?{_DNS_LABELS}$")
_SECTION_NAME = re.compile(rf"^{_DNS_LABELS}$")
_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")  # GEP-2257
_PARENT_REF = {"group", "kind", "namespace", "name", "sectionName", "port"}
_BACKEND_REF = {"group", "kind", "name", "namespace", "port", "weight", "filters"}
_MATCH = {"path", "headers", "queryParams", "method"}
_RULE = {"name", "matches", "filters", "backendRefs", "timeouts"}
_PATH_TYPES = {"Exact", "PathPrefix", "RegularExpression"}
_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)(ms|h|m|s)", duration))


def _keys(where: str, value: object, allowed: set[str], required: Iterable[str] = ()) -> Doc:
    assert isinstance(value, dict), f"{where}: not an object"
    fields: Doc = cast(Doc, value)
    assert set(fields) <= allowed, f"{where}: unknown fields {set(fields) - allowed}"
    missing = set(required) - set(fields)
    assert not missing, f"{where}: missing {missing}"
    return fields


def _list(where: str, value: object, most: int) -> list[Any]:
    assert isinstance(value, list), f"{where}: not a list"
    items = cast(list[Any], value)
    assert len(items) <= most, f"{where}: more than {most} items"
    return items


def http_route_problems(route: Doc) -> None:
    """Raise AssertionError on anything the HTTPRoute v1 CRD would refuse."""
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    _keys("HTTPRoute", route, {"apiVersion", "kind", "metadata", "spec"}, {"metadata", "spec"})
    spec = _keys("spec", route["spec"], {"parentRefs", "hostnames", "rules"})
    for i, ref in enumerate(_list("parentRefs", spec.get("parentRefs", []), 32)):
        ref = _keys(f"parentRefs[{i}]", ref, _PARENT_REF, {"name"})
        assert ref.get("group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
        assert ref.get("kind", "Gateway") == "Gateway"
        if "sectionName" in ref:
            assert _SECTION_NAME.match(ref["sectionName"]), ref["sectionName"]
        assert 1 <= len(ref["name"]) <= 253
    for host in _list("hostnames", spec.get("hostnames", []), 16):
        assert isinstance(host, str), host
        assert len(host) <= 253, host
        assert _HOSTNAME.match(host), host
    rules = _list("rules", spec.get("rules", [{}]), 16)
    for i, rule in enumerate(rules):
        rule = _keys(f"rules[{i}]", rule, _RULE)
        for j, match in enumerate(_list(f"rules[{i}].matches", rule.get("matches", []), 64)):
            match = _keys(f"rules[{i}].matches[{j}]", match, _MATCH)
            if "method" in match:
                assert match["method"] in _METHODS
            path = _keys(f"rules[{i}].matches[{j}].path", match.get("path", {}), {"type", "value"})
            kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
            assert kind in _PATH_TYPES, kind
            assert isinstance(value, str), value
            assert len(value) <= 1024, value
            if kind != "RegularExpression":
                assert value.startswith("/"), value
                for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
                    assert bad not in value, value
                assert not value.endswith(("/..", "/.")), value
        timeouts = _keys(
            f"rules[{i}].timeouts", rule.get("timeouts", {}), {"request", "backendRequest"}
        )
        for name, duration in timeouts.items():
            assert isinstance(duration, str), (name, duration)
            assert _DURATION.match(duration), (name, duration)
        if {"request", "backendRequest"} <= set(timeouts) and _seconds(timeouts["request"]):
            assert _seconds(timeouts["backendRequest"]) <= _seconds(timeouts["request"])
        for j, ref in enumerate(_list(f"rules[{i}].backendRefs", rule.get("backendRefs", []), 16)):
            ref = _keys(f"rules[{i}].backendRefs[{j}]", ref, _BACKEND_REF, {"name"})
            if ref.get("group", "") == "" and ref.get("kind", "Service") == "Service":
                port = ref.get("port")  # a Service backend needs a port number
                assert isinstance(port, int), ref
                assert 1 <= port <= 65535, ref
            assert 0 <= ref.get("weight", 1) <= 1_000_000


def test_the_http_route_check_refuses_what_the_crd_refuses() -> None:
    (route,) = [d for d in render("prod-gateway") if d["kind"] == "HTTPRoute"]
    http_route_problems(route)
    broken: list[tuple[str, str, object]] = [
        ("spec", "backendRefs", []),  # a rule's field one level too high
        ("rule", "timeouts", {"request": "1 hour"}),
        ("rule", "timeouts", {"request": "10s", "backendRequest": "1m"}),
        ("match", "path", {"type": "Prefix", "value": "/realms"}),  # Ingress' name, not ours
        ("match", "path", {"type": "PathPrefix", "value": "realms"}),
        ("backend", "port", "http"),  # a Service port's name is not accepted
    ]
    for where, field, value in broken:
        bad: Doc = json.loads(json.dumps(route))
        target = {
            "spec": bad["spec"],
            "rule": bad["spec"]["rules"][0],
            "match": bad["spec"]["rules"][0]["matches"][0],
            "backend": bad["spec"]["rules"][0]["backendRefs"][0],
        }[where]
        target[field] = value
        with pytest.raises(AssertionError):
            http_route_problems(bad)


def test_gateway_overlay_routes_what_the_ingress_routes() -> None:
    ingress = one(render("prod"), "Ingress")
    docs = render("prod-gateway")
    assert not [d for d in docs if d["kind"] == "Ingress"]
    route = one(docs, "HTTPRoute", "cityexchange")
    http_route_problems(route)

    (rule,) = ingress["spec"]["rules"]
    path_type = {"Exact": "Exact", "Prefix": "PathPrefix"}
    ingress_paths = {(path_type[p["pathType"]], p["path"]) for p in rule["http"]["paths"]}
    route_paths = {
        (m["path"]["type"], m["path"]["value"])
        for r in route["spec"]["rules"]
        for m in r["matches"]
    }
    assert route_paths == ingress_paths
    public_host = one(docs, "ConfigMap")["data"]["CITYEXCHANGE_PUBLIC_URL"].split("//")[1]
    assert route["spec"]["hostnames"] == [rule["host"]] == [public_host]

    service = one(docs, "Service", "cityexchange")
    ports = {p["port"] for p in service["spec"]["ports"]}
    for r in route["spec"]["rules"]:
        for ref in r["backendRefs"]:
            assert (ref["name"], ref["port"]) in {("cityexchange", port) for port in ports}
    # Subscriptions live for hours on one request: the /graphql rule's timeout is at least the
    # Ingress' hour, or off ("0s").
    (graphql,) = [
        r for r in route["spec"]["rules"] if r["matches"][0]["path"]["value"] == "/graphql"
    ]
    request = _seconds(graphql["timeouts"]["request"])
    assert request == 0 or request >= 3600

    # The gateway's proxies, not ingress-nginx, may reach the API pods.
    policy = one(docs, "NetworkPolicy", "cityexchange-ingress-from-controller")
    sources = [s["namespaceSelector"]["matchLabels"] for s in policy["spec"]["ingress"][0]["from"]]
    assert {"kubernetes.io/metadata.name": "ingress-nginx"} not in sources
