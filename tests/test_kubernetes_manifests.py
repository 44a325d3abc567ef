"""deploy/kubernetes/: schema-valid, hardened, and consistent with itself and the image.

No cluster here: the manifests are checked offline.
  - Every document of every file validates against the Kubernetes OpenAPI schemas shipped by
    kubernetes-validate, strict (an unknown or misspelt field fails), for every Kubernetes
    version the validator ships.
  - The schema does not check enum values or quantities (`type: Rolling`, `memory: lots`
    pass it), nor how resources refer to each other: the tests below do, for what these
    manifests use.
  - The hardening the image is built for is there: non-root 65532, read-only root, a /tmp in
    memory, all capabilities dropped, no privilege escalation, RuntimeDefault seccomp,
    requests and limits, probes on /alwaysok, a RollingUpdate that never goes below the
    replica count.
Not checked (it needs a cluster): admission (Pod Security "restricted", quotas), that the
image can be pulled, that the probes pass, scheduling, NetworkPolicy enforcement.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate  # the `dev` extra: schemas for many Kubernetes versions, offline
import kubernetes_validate.utils
import pytest
import yaml

from harness.image import NONROOT
from tinyapi import __version__

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "deploy" / "kubernetes"
FILES = sorted(MANIFESTS.glob("*.y*ml"))
VERSIONS = kubernetes_validate.utils.all_versions()  # e.g. 1.25.0 ... 1.37.0
NAMESPACE = "tinyapi"
APP = {"app.kubernetes.io/name": "tinyapi"}


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_docs() -> list[dict]:
    return [doc for path in FILES for doc in load(path)]


def one(kind: str) -> dict:
    found = [doc for doc in all_docs() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def deployment() -> dict:
    return one("Deployment")


@pytest.fixture(scope="module")
def pod(deployment) -> dict:
    return deployment["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    assert len(pod["containers"]) == 1, pod["containers"]
    return pod["containers"][0]


# --- the schema --------------------------------------------------------------------------------


def validate_everywhere(doc: dict) -> list[str]:
    """Errors of `doc` against every shipped Kubernetes version, strict; [] when valid."""
    errors = []
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(map(str, err.path)) or "(top)"
            errors.append(f"k8s {version}: {where}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:  # a warning in its CLI: not here
            errors.append(f"k8s {version}: {err.message}")
    return errors


def test_the_expected_resources_are_there():
    kinds = sorted(doc["kind"] for doc in all_docs())
    assert kinds == sorted(
        ["Namespace", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"]
    ), kinds
    assert VERSIONS, "kubernetes-validate ships no schema"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_manifest_validates_strictly_against_every_kubernetes_version(path):
    docs = load(path)
    assert docs, f"{path.name} holds no resource"
    for doc in docs:
        assert not validate_everywhere(doc), "\n".join(validate_everywhere(doc))


def test_the_validator_is_strict(deployment):
    """A misspelt field must fail: else the test above proves little."""
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFileSystem"
    ] = True  # capital S: not a Kubernetes field
    errors = validate_everywhere(broken)
    assert len(errors) == len(VERSIONS), errors
    assert "readOnlyRootFileSystem" in errors[0]
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = "65532"
    assert validate_everywhere(wrong_type)


# --- what the schema does not check ------------------------------------------------------------

QUANTITY = re.compile(r"^(?P<n>\d+(\.\d+)?)(?P<unit>m|k|M|G|Ki|Mi|Gi)?$")
FACTOR = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(text: str | int) -> float:
    """A Kubernetes quantity ("100m", "192Mi", "1") as a number."""
    match = QUANTITY.match(str(text))
    assert match, f"not a Kubernetes quantity: {text!r}"
    return float(match["n"]) * FACTOR[match["unit"]]


def test_every_resource_is_in_the_namespace_the_first_file_creates():
    assert FILES[0].name.startswith("00-"), "kubectl apply -f DIR reads files in name order"
    assert [doc["kind"] for doc in load(FILES[0])] == ["Namespace"]
    ns = one("Namespace")
    assert ns["metadata"]["name"] == NAMESPACE
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in all_docs():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]


def test_image_is_this_version(deployment, container):
    assert container["image"] == f"tinyapi:{__version__}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == __version__
    assert (
        deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
        == __version__
    )


def test_pod_runs_as_nonroot_with_runtime_default_seccomp(pod, container):
    for where, ctx in (
        ("pod", pod["securityContext"]),
        ("container", container["securityContext"]),
    ):
        assert ctx["runAsNonRoot"] is True, where
        assert ctx["runAsUser"] == NONROOT, where
        assert ctx["runAsGroup"] == NONROOT, where
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_container_is_locked_down(container):
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}  # and nothing added back
    assert "privileged" not in ctx or ctx["privileged"] is False


def test_pod_takes_nothing_it_does_not_need(pod):
    assert pod["automountServiceAccountToken"] is False
    # Service links would inject TINYAPI_<SERVICE>_... variables that tinyapi reads as config.
    assert pod["enableServiceLinks"] is False
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), key


def test_tmp_is_an_exec_capable_memory_emptydir(pod, container):
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/tmp"}, "the only writable path"
    assert not mounts["/tmp"].get("readOnly")
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = volumes[mounts["/tmp"]["name"]]
    assert tmp["emptyDir"]["medium"] == "Memory"
    # 24.2 MB are unpacked there (once: restarts reuse it); room for two, in the memory limit.
    assert (
        2 * 24.3e6
        <= quantity(tmp["emptyDir"]["sizeLimit"])
        <= quantity(container["resources"]["limits"]["memory"])
    )


def test_requests_and_limits_are_set_and_sane(container):
    res = container["resources"]
    for kind in ("requests", "limits"):
        assert set(res[kind]) >= {"cpu", "memory"}, kind
    for key in ("cpu", "memory"):
        assert 0 < quantity(res["requests"][key]) <= quantity(res["limits"][key]), key
    # Measured: 64.5 MiB idle, 87 MiB peak under load (the /tmp in memory included).
    assert quantity(res["requests"]["memory"]) >= 64.5 * 2**20
    assert quantity(res["limits"]["memory"]) >= 1.5 * 87 * 2**20


def test_probes_hit_alwaysok_on_the_container_port(container):
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/alwaysok", probe
        assert ports.get(get["port"], get["port"]) == 8080, probe
        assert container[probe]["timeoutSeconds"] >= 1, probe
    # Liveness must be more patient than readiness: take out of the Service before killing.
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert (
        live["periodSeconds"] * live["failureThreshold"]
        > ready["periodSeconds"] * ready["failureThreshold"]
    )


def test_rolling_update_never_goes_below_the_replica_count(deployment):
    spec = deployment["spec"]
    assert spec["replicas"] >= 2, "one replica is down while it restarts"
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 2


def test_selectors_and_ports_agree(deployment, container):
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict) -> bool:
        return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())

    assert deployment["spec"]["selector"]["matchLabels"] == APP
    assert selects(deployment["spec"]["selector"]["matchLabels"])
    service = one("Service")
    assert selects(service["spec"]["selector"])
    container_ports = {p["name"] for p in container["ports"]} | {
        p["containerPort"] for p in container["ports"]
    }
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in container_ports, port
    pdb = one("PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"])
    assert 0 < pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"], (
        "minAvailable >= replicas would block every node drain"
    )
    policy = one("NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"])
    allowed_in = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert 8080 in allowed_in
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert all(selects(c["labelSelector"]["matchLabels"]) for c in spread)
