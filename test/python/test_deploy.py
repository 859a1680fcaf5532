"""deploy/: the Dockerfile and the Kubernetes manifests, checked without a Docker daemon or a cluster.

- every manifest parses, and validates against the Kubernetes OpenAPI schemas (kubernetes-validate, strict:
  unknown fields are errors) of the versions in K8S_VERSIONS; also the output of `kubectl kustomize` when
  kubectl (or kustomize) is installed;
- the manifests agree with each other and with the service: selectors, ports, probes on /health, the Secret
  and the claim they name, the grace period against SHUTDOWN_TIMEOUT + preStop, every environment variable
  one that src/server/config.ts knows, the ingress' limits against the service's, Pod Security "restricted";
- the Dockerfile (dockerfile-parse): multi-stage, pinned bases, a non-root numeric USER, HEALTHCHECK, EXPOSE,
  tini, and every file it COPYs present in the repository and let in by .dockerignore;
- yamllint on the manifests;
- with the service built (dist/, as `npm test` has it): the Deployment's environment is accepted by the
  service's own configuration parser, and the image's HEALTHCHECK command, run as written, passes against
  the service started with the image's and the Deployment's settings (and fails once it has stopped).

kubernetes-validate, dockerfile-parse and yamllint come from PyPI (scripts/requirements.txt); a test that
needs one that is missing is skipped, saying which.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIG_TS = ROOT / "src" / "server" / "config.ts"

# The Kubernetes versions whose schemas the manifests must satisfy: the oldest and the newest that
# kubernetes-validate 1.37.0 bundles (it validates offline, from the schemas inside the package).
K8S_VERSIONS = ("1.25", "1.37")

# Variables the service reads that src/server/config.ts's VARIABLES does not list (yet): the shared cache and
# the worker processes (issue 11).
EXTRA_SERVICE_VARIABLES = {"REDIS_URL", "PREDICTION_CACHE_TTL", "WORKERS"}

# Files in deploy/kubernetes that kustomization.yaml leaves out on purpose.
NOT_IN_KUSTOMIZATION = {"kustomization.yaml", "secret.example.yaml"}

# ingress-nginx's default upstream keep-alive timeout (its ConfigMap's upstream-keepalive-timeout), seconds.
INGRESS_NGINX_UPSTREAM_KEEPALIVE_S = 60

APP = "food-classifier"  # the classifier's Deployment, Service, Ingress, HPA and PDB
APP_CONTAINER = "food-classifier"


def need(module: str, package: str):
    """Imports `module`, or skips the test naming the PyPI package that provides it."""
    return pytest.importorskip(
        module, reason=f"{package} is not installed (.venv/bin/pip install -r scripts/requirements.txt)"
    )


# --- loading ---------------------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    """The base's manifests (deploy/kubernetes; overlays live beside it, in deploy/overlays)."""
    return sorted(p for p in K8S.glob("*") if p.suffix in (".yaml", ".yml"))


def load_documents() -> list[tuple[Path, dict]]:
    docs = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


DOCS = load_documents()
RESOURCES = [(p, d) for p, d in DOCS if d.get("kind") != "Kustomization"]


def find(kind: str, name: str) -> dict:
    matches = [d for _, d in RESOURCES if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name} in deploy/kubernetes, found {len(matches)}"
    return matches[0]


def all_of(kind: str) -> list[dict]:
    return [d for _, d in RESOURCES if d["kind"] == kind]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def container(workload: dict, name: str) -> dict:
    (c,) = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    return c


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def env_value(c: dict, name: str) -> str:
    entry = env_of(c)[name]
    assert "value" in entry, f"{name} is expected as a plain value"
    return entry["value"]


def selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels, or a Service's plain map) against a pod's labels."""
    match = selector.get("matchLabels", selector) if "matchExpressions" not in selector else None
    assert match is not None, "matchExpressions are not checked here"
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def pods_selected(selector: dict) -> list[dict]:
    """The workloads (Deployments, Jobs) whose pods the selector selects."""
    return [
        w
        for w in all_of("Deployment") + all_of("Job")
        if selects(selector, w["spec"]["template"]["metadata"].get("labels", {}))
    ]


def resolve_port(port: int | str, c: dict) -> int:
    """A probe's or a Service's target port (a number, or a container port's name) as a number."""
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if isinstance(port, int):
        assert port in ports.values(), f"port {port} is not a port of container {c['name']}"
        return port
    assert port in ports, f"port '{port}' is not a named port of container {c['name']}: {sorted(ports)}"
    return ports[port]


def quantity_bytes(q: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    assert m and (m.group(2) in units or m.group(2) == ""), f"unexpected quantity {q!r}"
    return float(m.group(1)) * units.get(m.group(2), 1)


def quantity_cpu(q: str | int) -> float:
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def config_variables() -> set[str]:
    """The names in src/server/config.ts's VARIABLES list (what `--help` prints)."""
    text = CONFIG_TS.read_text()
    m = re.search(r"export const VARIABLES\b[^=]*=\s*\[(.*?)\n\];", text, re.S)
    assert m, "VARIABLES not found in src/server/config.ts"
    names = set(re.findall(r"\bname:\s*'([A-Z][A-Z0-9_]*)'", m.group(1)))
    # Guards against a regex that silently stops matching.
    assert {"PORT", "HOST", "MODEL_DIR", "API_KEYS", "SHUTDOWN_TIMEOUT"} <= names, names
    return names


# --- parsing and schemas ---------------------------------------------------------------------------------


def test_manifests_parse_and_are_named():
    assert manifest_files(), "no manifests in deploy/kubernetes"
    seen = set()
    for path, doc in DOCS:
        assert {"apiVersion", "kind"} <= doc.keys(), f"{path.name}: a document without apiVersion/kind"
        if doc["kind"] == "Kustomization":
            continue
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{path.name}: {key} defined twice"
        seen.add(key)
    expected = {
        "Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret",
        "PersistentVolumeClaim", "Namespace", "Job", "NetworkPolicy",
    }  # fmt: skip
    assert expected <= {k for k, _ in seen}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_kubernetes_schemas(version):
    kv = need("kubernetes_validate", "kubernetes-validate")
    for path, doc in RESOURCES:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as e:  # the message names the field
            location = ".".join(str(p) for p in e.path)
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {location}: {e.message}")


def kustomize_build(folder: Path = K8S) -> list[dict]:
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(folder)]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(folder)]
    else:
        pytest.skip("neither kustomize nor kubectl is installed: the kustomization is not rendered")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_kustomization_lists_every_manifest():
    (kustomization,) = [d for _, d in DOCS if d.get("kind") == "Kustomization"]
    listed = kustomization["resources"]
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization.yaml lists {name}, which does not exist"
    files = {p.name for p in manifest_files()}
    assert files - NOT_IN_KUSTOMIZATION == set(listed), "every manifest but the example Secret is in kustomization.yaml"
    # The example Secret's keys are public: `kubectl apply -k` must never install them.
    assert "secret.example.yaml" not in listed
    assert kustomization["namespace"] == find("Namespace", "food-classifier")["metadata"]["name"]
    images = {i["name"] for i in kustomization.get("images", [])}
    app_image = container(find("Deployment", APP), APP_CONTAINER)["image"].split(":")[0]
    assert app_image in images, "kustomization.yaml's images: sets the classifier's image"


def test_kustomize_build_renders_valid_manifests():
    rendered = kustomize_build()
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds == sorted(d["kind"] for _, d in RESOURCES if d["kind"] != "Secret"), kinds
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "food-classifier", doc["metadata"]["name"]
    kv = need("kubernetes_validate", "kubernetes-validate")
    for version in K8S_VERSIONS:
        for doc in rendered:
            kv.validate(doc, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[o.name for o in OVERLAYS])
def test_overlay_renders_valid_manifests_that_fit(overlay):
    rendered = kustomize_build(overlay)
    kv = need("kubernetes_validate", "kubernetes-validate")
    for version in K8S_VERSIONS:
        for doc in rendered:
            kv.validate(doc, version, strict=True)
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == APP]
    c = container(deployment, APP_CONTAINER)
    limits, requests = c["resources"]["limits"], c["resources"]["requests"]
    assert int(env_value(c, "THREADS")) <= quantity_cpu(limits["cpu"])
    assert quantity_bytes(limits["memory"]) >= quantity_bytes(requests["memory"])
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > float(
        env_value(c, "SHUTDOWN_TIMEOUT")
    ) + prestop_seconds(c)
    if overlay.name == "full-model":
        # The full-size model: ~0.9 GB RSS, two of them during a reload (see deploy/README.md).
        assert quantity_bytes(limits["memory"]) >= 2.5 * 2**30
        assert not [d for d in rendered if d["kind"] == "Job"], "no demo-model seed Job"


# --- cross-references ------------------------------------------------------------------------------------


def test_service_selects_the_deployment_and_its_port():
    deployment = find("Deployment", APP)
    assert selects(deployment["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
    assert deployment["spec"]["replicas"] >= 2
    for service in all_of("Service"):
        workloads = [w for w in pods_selected(service["spec"]["selector"]) if w["kind"] == "Deployment"]
        assert len(workloads) == 1, f"Service {service['metadata']['name']} selects {len(workloads)} Deployments"
        (c,) = pod_spec(workloads[0])["containers"]
        for port in service["spec"]["ports"]:
            resolve_port(port["targetPort"], c)
    # The classifier's Service reaches the port the service listens on.
    service = find("Service", APP)
    c = container(deployment, APP_CONTAINER)
    (port,) = service["spec"]["ports"]
    assert resolve_port(port["targetPort"], c) == int(env_value(c, "PORT")) == 8000


def test_probes_hit_health_on_the_container_port():
    c = container(find("Deployment", APP), APP_CONTAINER)
    port = int(env_value(c, "PORT"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/health", probe
        assert resolve_port(get["port"], c) == port, probe
        assert get.get("scheme", "HTTP") == "HTTP", f"{probe}: the service speaks plain HTTP in the pod"
    # A generous start-up budget: the 2 GB model from a network volume.
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def prestop_seconds(c: dict) -> int:
    pre = c["lifecycle"]["preStop"]
    if "sleep" in pre:
        return int(pre["sleep"]["seconds"])
    command = pre["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, f"preStop is expected to be a sleep: {command}"
    return int(command[1])


def test_grace_period_covers_prestop_and_shutdown_timeout():
    deployment = find("Deployment", APP)
    c = container(deployment, APP_CONTAINER)
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    shutdown = float(env_value(c, "SHUTDOWN_TIMEOUT"))
    assert prestop_seconds(c) >= 5
    assert grace > shutdown + prestop_seconds(c), (grace, shutdown, prestop_seconds(c))


def test_every_env_var_is_one_the_service_knows():
    known = config_variables() | EXTRA_SERVICE_VARIABLES
    for workload in all_of("Deployment"):
        for c in pod_spec(workload)["containers"]:
            if not c["image"].startswith("torchscript-node"):
                continue
            unknown = set(env_of(c)) - known
            assert not unknown, f"{workload['metadata']['name']}/{c['name']} sets unknown variables {unknown}"
            assert not c.get("envFrom"), "every variable is listed in env (so that this test sees it)"
    c = container(find("Deployment", APP), APP_CONTAINER)
    assert env_value(c, "HOST") == "0.0.0.0"
    assert env_value(c, "MODEL_DIR") == "/models"
    # THREADS: the CPU limit (Node would count the node's cores).
    assert int(env_value(c, "THREADS")) <= quantity_cpu(c["resources"]["limits"]["cpu"])


def test_secrets_and_claims_referenced_exist():
    secrets = {s["metadata"]["name"]: s for s in all_of("Secret")}
    claims = {p["metadata"]["name"] for p in all_of("PersistentVolumeClaim")}
    for workload in all_of("Deployment") + all_of("Job"):
        spec = pod_spec(workload)
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, volume
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, volume
        for c in containers(spec):
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in spec.get("volumes", [])}, c["name"]
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, f"{c['name']}: Secret {ref['name']} is not in deploy/kubernetes"
                    secret = secrets[ref["name"]]
                    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
                    assert ref["key"] in keys, f"Secret {ref['name']} has no key {ref['key']}"
    # The example keys satisfy the service (16+ characters, no spaces) and say what they are.
    for key, value in secrets["food-classifier-api-keys"]["stringData"].items():
        assert len(value) >= 16 and " " not in value and "NOT-FOR-PRODUCTION" in value, key
    c = container(find("Deployment", APP), APP_CONTAINER)
    assert env_of(c)["API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "food-classifier-api-keys"


def test_model_volume_is_read_only_and_tmp_writable():
    deployment = find("Deployment", APP)
    spec = pod_spec(deployment)
    volumes = {v["name"]: v for v in spec["volumes"]}
    c = container(deployment, APP_CONTAINER)
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    models = mounts["/models"]
    assert volumes[models["name"]]["persistentVolumeClaim"].get("readOnly") is True
    for each in containers(spec):  # the init container too
        for mount in each.get("volumeMounts", []):
            if mount["name"] == models["name"]:
                assert mount.get("readOnly") is True, f"{each['name']} mounts the model volume writable"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_ingress_hpa_pdb_and_redis_fit_the_service():
    deployment = find("Deployment", APP)
    c = container(deployment, APP_CONTAINER)
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    ingress = find("Ingress", APP)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    hosts = {r["host"] for r in ingress["spec"]["rules"]}
    assert hosts <= {h for t in ingress["spec"]["tls"] for h in t["hosts"]}, "every host is served with TLS"
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            service = find("Service", backend["name"])
            names = {p.get("name") for p in service["spec"]["ports"]} | {p["port"] for p in service["spec"]["ports"]}
            assert backend["port"].get("name", backend["port"].get("number")) in names
    notes = ingress["metadata"]["annotations"]
    # nginx sizes: bytes, or k (KiB), m (MiB), g (GiB).
    body = re.fullmatch(r"(\d+)([kmg]?)", notes["nginx.ingress.kubernetes.io/proxy-body-size"].lower())
    body_mib = int(body.group(1)) * {"": 2**-20, "k": 2**-10, "m": 1, "g": 2**10}[body.group(2)]
    assert body_mib > float(env_value(c, "MAX_UPLOAD_MB")), "the service, not nginx, answers 413"
    read_timeout = int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"])
    assert read_timeout > int(env_value(c, "REQUEST_TIMEOUT_MS")) / 1000, "the service's 503 comes before nginx's 504"
    assert int(env_value(c, "KEEP_ALIVE_TIMEOUT")) > INGRESS_NGINX_UPSTREAM_KEEPALIVE_S

    hpa = find("HorizontalPodAutoscaler", APP)
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", APP)
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and "cpu" in c["resources"]["requests"], "utilisation needs a request"

    pdb = find("PodDisruptionBudget", APP)
    assert selects(pdb["spec"]["selector"], labels)

    redis = find("Deployment", "food-classifier-redis")
    (rc,) = pod_spec(redis)["containers"]
    args = rc["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "allkeys-lru"
    maxmemory = quantity_bytes(args[args.index("--maxmemory") + 1].replace("mb", "Mi").replace("gb", "Gi"))
    assert quantity_bytes(rc["resources"]["limits"]["memory"]) > maxmemory
    assert args[args.index("--save") + 1] == "" and args[args.index("--appendonly") + 1] == "no", (
        "a cache: no persistence"
    )
    url = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)", env_value(c, "REDIS_URL"))
    assert url, env_value(c, "REDIS_URL")
    # With REDIS_URL the service needs CACHE_SECRET (32+ characters): from the Secret, never a value in the manifest.
    secret_ref = env_of(c)["CACHE_SECRET"]["valueFrom"]["secretKeyRef"]
    assert "optional" not in secret_ref, "without CACHE_SECRET the service does not start"
    example = find("Secret", secret_ref["name"])["stringData"][secret_ref["key"]]
    assert len(example) >= 32 and not re.search(r"\s", example)
    redis_service = find("Service", url.group(1))
    assert int(url.group(2)) in {p["port"] for p in redis_service["spec"]["ports"]}
    assert pods_selected(redis_service["spec"]["selector"]) == [redis]
    policy = find("NetworkPolicy", "food-classifier-redis")
    assert selects(policy["spec"]["podSelector"], redis["spec"]["template"]["metadata"]["labels"])
    (allowed,) = policy["spec"]["ingress"]
    assert any(selects(f["podSelector"], labels) for f in allowed["from"]), "the classifier may reach Redis"
    for port in allowed["ports"]:
        resolve_port(port["port"], rc)


def test_resources_and_pod_security_restricted():
    """Every pod would be admitted by Pod Security "restricted" (the namespace enforces it), with resources."""
    namespace = find("Namespace", "food-classifier")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in all_of("Deployment") + all_of("Job"):
        spec = pod_spec(workload)
        pod_sc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]
        for volume in spec.get("volumes", []):
            assert volume.keys() & {"persistentVolumeClaim", "emptyDir", "secret", "configMap"}, volume
        for c in containers(spec):
            where = f"{workload['metadata']['name']}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc.get("privileged") is not True, where
            assert (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", pod_sc.get("runAsUser")) not in (None, 0), where
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
            assert seccomp in ("RuntimeDefault", "Localhost"), where
            assert sc.get("readOnlyRootFilesystem") is True, where
            resources = c["resources"]
            for kind in ("cpu", "memory"):
                request, limit = resources["requests"][kind], resources["limits"][kind]
                parse = quantity_cpu if kind == "cpu" else quantity_bytes
                assert parse(limit) >= parse(request), f"{where}: {kind} limit below its request"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{where}: {image}"


# --- the Dockerfile --------------------------------------------------------------------------------------


def dockerfile():
    parse = need("dockerfile_parse", "dockerfile-parse")
    return parse.DockerfileParser(path=str(DOCKERFILE), env_replace=True)


def stages(df) -> list[list[dict]]:
    """The instructions of each stage (from its FROM on)."""
    out: list[list[dict]] = []
    for ins in df.structure:
        if ins["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def instructions(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def image_command(df) -> list[str]:
    """The final stage's CMD: how the image starts the service."""
    (cmd,) = instructions(stages(df)[-1], "CMD")
    return json.loads(cmd)


def test_dockerfile_stages_bases_and_runtime_settings():
    df = dockerfile()
    assert df.is_multistage
    parts = stages(df)
    assert len(parts) >= 2
    for image in df.parent_images:  # ARGs resolved
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and "$" not in tag, f"unpinned base image {image}"
        assert "bookworm" in tag, f"{image}: every stage on Debian 12 (bookworm)"
    assert len({re.match(r"node:([0-9.]+)-", i).group(1) for i in df.parent_images}) == 1, "one Node everywhere"

    final = parts[-1]
    (user,) = instructions(final, "USER")[-1:]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: numeric (Kubernetes' runAsNonRoot checks it) and not root"
    deployment_uid = pod_spec(find("Deployment", APP))["securityContext"]["runAsUser"]
    assert int(uid) == deployment_uid
    assert "8000" in " ".join(instructions(final, "EXPOSE")).split()
    (healthcheck,) = instructions(final, "HEALTHCHECK")
    assert "/health" in healthcheck and "CMD" in healthcheck
    assert instructions(final, "STOPSIGNAL") == ["SIGTERM"]
    assert "/models" in " ".join(instructions(final, "VOLUME"))
    (entrypoint,) = instructions(final, "ENTRYPOINT")
    assert "tini" in json.loads(entrypoint)[0], "an init process as PID 1"
    main = image_command(df)
    assert main[0] == "node" and main[-1] == "dist/server/main.js"
    package = json.loads((ROOT / "package.json").read_text())
    assert f"&& {' '.join(main)}" in package["scripts"]["start"], "as npm start runs it, flags and all"
    assert (ROOT / "src" / "server" / "main.ts").is_file()
    env = {}
    for value in instructions(final, "ENV"):
        env.update(dict(re.findall(r"(\w+)=(\S+)", value)))
    assert env["HOST"] == "0.0.0.0" and env["MODEL_DIR"] == "/models" and env["PORT"] == "8000"
    assert set(env) - {"NODE_ENV"} <= config_variables() | EXTRA_SERVICE_VARIABLES
    # The build stage's outputs are where the runtime stage takes them from.
    assert package["scripts"]["install"] == "node scripts/install-addon.mjs"
    assert "const buildDir = path.join(root, 'build', 'cmake');" in (ROOT / "scripts" / "install-addon.mjs").read_text()
    assert json.loads((ROOT / "tsconfig.build.json").read_text())["compilerOptions"]["outDir"] == "dist"
    build_runs = " ".join(instructions(parts[0], "RUN"))
    assert (
        "npm ci" in build_runs and "tsc -p tsconfig.build.json" in build_runs and "npm prune --omit=dev" in build_runs
    )


def copy_sources(df) -> list[str]:
    """The repository paths the Dockerfile COPYs or ADDs from the build context (not --from another stage)."""
    sources = []
    for ins in df.structure:
        if ins["instruction"] not in ("COPY", "ADD"):
            continue
        words = ins["value"].split()
        if any(w.startswith("--from=") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        assert len(words) >= 2, ins["value"]
        sources += words[:-1]
    return sources


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as (is_exception, regex), with Docker's rules: Go's filepath.Match plus **, in order."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = os.path.normpath(line[1:].strip() if exception else line).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            ch = pattern[i]
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif ch == "*":
                regex, i = regex + "[^/]*", i + 1
            elif ch == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(ch), i + 1
        patterns.append((exception, re.compile(regex + r"\Z")))
    return patterns


def ignored(path: str, patterns) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: the last pattern matching it or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exception, regex in patterns:
        if any(regex.match(c) for c in candidates):
            excluded = not exception
    return excluded


def test_dockerignore_matcher_follows_docker_rules():
    patterns = dockerignore_patterns()
    assert ignored("node_modules/express/index.js", patterns)
    assert ignored("src/node_modules/x.js", patterns)
    assert ignored(".env", patterns) and ignored(".git/config", patterns) and ignored(".venv/bin/python", patterns)
    assert ignored("dist/server/main.js", patterns) and ignored("build/cmake/Release/torch_node.node", patterns)
    assert ignored("models/workshop/best_model.pth", patterns)
    assert not ignored("src/server/main.ts", patterns) and not ignored("models/vocab.txt", patterns)


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_context():
    df = dockerfile()
    patterns = dockerignore_patterns()
    sources = copy_sources(df)
    assert sources
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"the Dockerfile copies {source}, which is not in the repository"
        files = [source.rstrip("/")] if path.is_file() else [
            f for f in tracked if f.startswith(source.rstrip("/") + "/")
        ]  # fmt: skip
        assert files, f"{source}: no tracked file under it"
        left_out = [f for f in files if ignored(f, patterns)]
        assert not left_out, f".dockerignore leaves out what the Dockerfile copies: {left_out[:5]}"
    # The build context never holds what must not be in an image.
    for secret in (".env", "node_modules/x", ".venv/x", ".git/HEAD", "models/workshop/best_model.pth"):
        assert ignored(secret, patterns), secret


# --- yamllint --------------------------------------------------------------------------------------------


def test_yamllint():
    need("yamllint", "yamllint")
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig(file=str(DEPLOY / ".yamllint.yaml"))
    problems = []
    for path in manifest_files() + [o / "kustomization.yaml" for o in OVERLAYS] + [DEPLOY / ".yamllint.yaml"]:
        for p in linter.run(path.read_text(), config, str(path)):
            problems.append(f"{path.relative_to(ROOT)}:{p.line}:{p.column}: {p.level}: {p.message}")
    assert not problems, "\n".join(problems)


# --- against the built service ---------------------------------------------------------------------------

DIST_MAIN = ROOT / "dist" / "server" / "main.js"
needs_build = pytest.mark.skipif(
    not (DIST_MAIN.is_file() and (ROOT / "node_modules").is_dir() and shutil.which("node")),
    reason="the service is not built (dist/, node_modules): bash scripts/setup.sh",
)


def deployment_env(c: dict) -> dict[str, str]:
    """The classifier container's environment, the Secret's values filled in from the example Secret."""
    secret = find("Secret", "food-classifier-api-keys")["stringData"]
    env = {}
    for e in c["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = secret[e["valueFrom"]["secretKeyRef"]["key"]]
    return env


def image_env() -> dict[str, str]:
    env = {}
    for ins in dockerfile().structure:
        if ins["instruction"] == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", ins["value"])))
    return env


@needs_build
def test_deployment_env_is_accepted_by_the_service_config(tmp_path):
    env = {**image_env(), **deployment_env(container(find("Deployment", APP), APP_CONTAINER))}
    script = (
        "const { loadConfig } = await import(process.argv[1]);"
        "const c = loadConfig(JSON.parse(process.argv[2]), process.argv[3]);"
        "console.log(JSON.stringify({ host: c.host, port: c.port, modelDir: c.modelDir, threads: c.threads,"
        " keys: c.apiKeys.length, admin: c.adminApiKeys.length, shutdownTimeoutMs: c.shutdownTimeoutMs }));"
    )
    config_js = (ROOT / "dist" / "server" / "config.js").as_uri()
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script, config_js, json.dumps(env), str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    assert config == {
        "host": "0.0.0.0", "port": 8000, "modelDir": "/models", "threads": 2, "keys": 1, "admin": 1,
        "shutdownTimeoutMs": 30_000,
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthcheck_command(df) -> list[str]:
    (value,) = [i["value"] for i in df.structure if i["instruction"] == "HEALTHCHECK"]
    return json.loads(value[value.index("CMD") + 3 :])


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


@needs_build
def test_image_healthcheck_against_the_service_with_the_deployment_settings(tmp_path):
    """The HEALTHCHECK command as written, against the service started as the pod would start it (the demo
    model; Redis left out: none runs here), then SIGTERM as Kubernetes sends it: a graceful exit 0."""
    df = dockerfile()
    command = healthcheck_command(df)
    assert command[0] == "node"
    port = free_port()
    env = {**image_env(), **deployment_env(container(find("Deployment", APP), APP_CONTAINER))}
    env.pop("REDIS_URL")
    env.update(PORT=str(port), MODEL_DIR=str(ROOT / "models"))
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}, **env}
    log = tmp_path / "service.log"

    def healthcheck() -> subprocess.CompletedProcess:
        # As Docker runs it: in the container's environment.
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)

    with open(log, "w") as out:
        service = subprocess.Popen(
            [*image_command(df)[:-1], str(DIST_MAIN)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Nothing listens until the model is loaded and warmed up: what the probes wait for.
        deadline = time.monotonic() + 180
        while service.poll() is None and time.monotonic() < deadline:
            try:
                if get(port, "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        assert service.poll() is None and get(port, "/health")[0] == 200, "not started:\n" + log.read_text()[-3000:]

        ok = healthcheck()
        assert ok.returncode == 0, f"HEALTHCHECK failed against the running service: {ok.stderr}"
        # The kubelet's probes: the pod's address as Host, no API key (API_KEYS is set).
        status, body = get(port, "/health", {"Host": f"10.1.2.3:{port}", "User-Agent": "kube-probe/1.37"})
        assert status == 200 and json.loads(body)["status"] == "healthy"
        assert get(port, "/metrics")[0] == 401, "with API_KEYS set, /metrics needs a key"

        service.send_signal(signal.SIGTERM)
        service.wait(timeout=float(env["SHUTDOWN_TIMEOUT"]) + 10)
        assert service.returncode == 0, "SIGTERM: a graceful stop, exit 0\n" + log.read_text()[-3000:]
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    down = healthcheck()
    assert down.returncode == 1, "HEALTHCHECK passes with nothing listening"
