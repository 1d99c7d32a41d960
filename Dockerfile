# cotvtm on the official Ray image (Ray and Python versions match pyproject.toml).
# GPU image by default; for CPU-only nodes: --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311-cpu
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu
FROM ${RAY_IMAGE}

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
USER ray
WORKDIR /home/ray/cotvtm

# Dependencies first (cached while only the code changes).
COPY --chown=ray:users constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt torch
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users cotvtm ./cotvtm
COPY --chown=ray:users jobs ./jobs
RUN pip install --no-cache-dir -c constraints.txt .

ENTRYPOINT []
CMD ["python", "-m", "jobs.soundtrack", "--help"]
