# cotvtm on the official Ray image: one image for the head, CPU workers and GPU workers.
# Ray and Python here must match pyproject.toml and constraints.txt (tests/test_deploy.py checks).
#
#   docker build -t cotvtm:0.1.0-gpu .                              # GPU nodes (and any node)
#   docker build -t cotvtm:0.1.0-cpu --build-arg VARIANT=cpu .      # CPU-only nodes, no CUDA libraries
#
# torch follows VARIANT: `gpu` installs PyPI's default Linux wheel of the pinned torch, which
# bundles its CUDA runtime and needs only the host's NVIDIA driver; `cpu` installs the CPU wheel
# from the PyTorch CPU index (several GB smaller). TORCH_INDEX overrides the index, e.g. a
# CUDA-specific one (https://download.pytorch.org/whl/cu128) to match an older driver.
# No secrets are built in: S3 access comes from the pod's or instance's IAM role at run time.
ARG RAY_VERSION=2.60.0
ARG PYTHON_TAG=py311
ARG VARIANT=gpu
FROM rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}

ARG VARIANT
ARG TORCH_INDEX=""

# ffmpeg/ffprobe: probing and the stream-copy mux. The distribution's version is what the base
# image's release ships (apt versions are not pinned: the base image tag fixes the release).
# The app folder is made here, owned by the unprivileged user, so the build can write in it.
USER 0
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 1000 -g 100 /home/ray/cotvtm

# The Ray image's unprivileged user: `ray`, uid 1000, group `users` (gid 100).
USER 1000:100
WORKDIR /home/ray/cotvtm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    COTVTM_CACHE=/home/ray/.cache/cotvtm

# Layers from least to most often changed: torch, then the pinned dependencies, then the code.
COPY --chown=1000:100 constraints.txt ./
RUN index="${TORCH_INDEX}"; \
    if [ -z "$index" ] && [ "$VARIANT" = "cpu" ]; then index="https://download.pytorch.org/whl/cpu"; fi; \
    if [ -n "$index" ]; then set -- --index-url "$index"; fi; \
    pip install --no-cache-dir -c constraints.txt "$@" torch

COPY --chown=1000:100 pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY --chown=1000:100 README.md ./
COPY --chown=1000:100 cotvtm ./cotvtm
COPY --chown=1000:100 jobs ./jobs
RUN pip install --no-cache-dir --no-deps . \
 && python -c "import cotvtm, jobs.soundtrack, jobs.distill, ray, diffusers, torchsde, c2pa; print('cotvtm', cotvtm.__version__, 'ray', ray.__version__, 'diffusers', diffusers.__version__)"

CMD ["python", "-m", "jobs.soundtrack", "--help"]
