"""The deployment files say what docs/operations.md promises: the rendered production
manifests are hardened, probe the right paths and leave room for the drain; the image runs
the documented command. (Schemas and lint: .ci/deploy-check, in `./dev check`.)"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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
