# One image for every role of the cluster (API, Ray head + worker loop, Ray GPU workers).
# TORCH_INDEX picks the PyTorch build: the CPU wheels (default) or a CUDA one for GPU nodes,
# e.g. --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY vradam ./vradam
COPY studies ./studies
COPY workers ./workers
COPY service ./service
RUN pip install "torch==${TORCH_VERSION}" ".[service,workers]"

RUN useradd --create-home lab
USER lab
EXPOSE 8000
CMD ["vradam-hpo", "serve", "--host", "0.0.0.0", "--no-local", "--no-worker"]
