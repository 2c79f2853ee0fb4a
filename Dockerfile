# Two images from one file, both with the plugin installed from its wheel: build it first (python -m build, in a
# checkout with Node.js; the wheel carries the built web client, so no Node.js is needed here), then
#   docker build -t histomics-label:latest .                  the Slicer CLI image slicer_cli_web runs from the
#                                                             DSA job panel (register it: Slicer CLI Web → upload
#                                                             image "histomics-label:latest")
#   docker build --target server -t histomics-label-server .  Girder 5 with the plugin (docker-compose.yml)
# Build arguments, for hosts that cannot reach Docker Hub or download.pytorch.org (docs/admin.md):
#   BASE_IMAGE         a Python 3.11 image on Debian (python:3.11-slim, or one made locally)
#   TORCH_REQUIREMENT  the torch to install first, from TORCH_INDEX_URL (its CPU builds) or from a wheel in dist/
#   TORCH_INDEX_URL    an index to look for it in (PyPI's torch is the 5 GB CUDA build)
#   EXTRA_WHEELS       a URL of more wheels (a find-links page) that pip prefers, like dist/, to the index's
#                      files of the same version
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS base
ARG TORCH_REQUIREMENT=torch==2.14.1
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRA_WHEELS

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/histomics_label
COPY dist/ /tmp/wheels/
# The CPU build of torch, installed first so that no CUDA build (5 GB) is pulled in by the plugin's requirement.
# pip prefers wheels it is given (dist/, EXTRA_WHEELS) to the index's files of the same version.
RUN wheels="--find-links /tmp/wheels ${EXTRA_WHEELS:+--find-links $EXTRA_WHEELS}" \
 && python -m pip install --no-cache-dir $wheels --index-url "$TORCH_INDEX_URL" "$TORCH_REQUIREMENT" \
 && wheel=$(ls /tmp/wheels/histomics_label-*.whl) \
 && python -m pip install --no-cache-dir $wheels "$wheel[girder5]" \
 && rm -r /tmp/wheels \
 && python -c "import histomics_label.core.features.extractors, histomics_label.web_client as c; assert c.client_built()"

FROM base AS server
# Girder 5 with Histomics Label and the plugins it loads; MongoDB and Redis come from docker-compose.yml.
ENV HISTOMICS_LABEL_DATA_DIR=/data/histomics_label
EXPOSE 8080
CMD ["sh", "-c", "girder serve --mode production --host 0.0.0.0 --port 8080 --database \"$GIRDER_MONGO_URI\""]

FROM base AS cli
COPY slicer_cli ./slicer_cli
WORKDIR /opt/histomics_label/slicer_cli
ENV OMP_NUM_THREADS=4

# slicer_cli_web calls: docker run IMAGE --list_cli, IMAGE <Name> --xml, and IMAGE <Name> [args...]
ENTRYPOINT ["python", "-m", "slicer_cli_web.cli_list_entrypoint"]
