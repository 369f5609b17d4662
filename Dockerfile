# One image for every role of the cluster (migrate, API, Ray head + worker loop, Ray GPU
# workers, optuna-dashboard). TORCH_INDEX picks the PyTorch build: the CPU wheels (the
# default) or a CUDA one for GPU nodes; docker-compose.yml builds both images:
#   docker build -t vradam-lab:cpu .
#   docker build -t vradam-lab:gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 .
# A GPU trial on the CPU image fails saying so (it never falls back to the CPU silently).
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VRADAM_LAB_DATA_ROOT=/lab/data HOME=/home/lab
WORKDIR /app

RUN useradd --create-home --uid 1000 lab
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY labcore ./labcore
COPY vradam ./vradam
COPY studies ./studies
COPY workers ./workers
COPY service ./service
# The pin keeps the build chosen above (2.13.0 matches 2.13.0+cu126): never a second torch.
RUN pip install "torch==${TORCH_VERSION}" ".[service,workers]"
COPY docker/ray-head.sh docker/healthcheck.py docker/migrate.py /usr/local/bin/
RUN chmod 0755 /usr/local/bin/ray-head.sh /usr/local/bin/healthcheck.py /usr/local/bin/migrate.py

# The data root (datasets are volumes mounted below it) and the working directory are the
# lab user's: downloads, Ray's temporary files and Tune's run state are written as `lab`.
RUN mkdir -p /lab/data/cifar10 /lab/data/wikitext2 /lab/data/shards /lab/runs \
    && chown -R lab:lab /app /lab
USER lab
EXPOSE 8000
CMD ["vradam-hpo", "serve", "--host", "0.0.0.0", "--no-local", "--no-worker"]
