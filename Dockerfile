# Two images from one file, both with the plugin installed from its wheel: build it first (python -m build, in a
# checkout with Node.js; the wheel carries the built web client, so no Node.js is needed here), then
#   docker build -t histomics-label:latest .                  the Slicer CLI image slicer_cli_web runs from the
#                                                             DSA job panel (register it: Slicer CLI Web → upload
#                                                             image "histomics-label:latest")
#   docker build --target server -t histomics-label-server .  Girder 5 with the plugin (docker-compose.yml)
FROM python:3.11-slim AS base

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/histomics_label
COPY dist/histomics_label-*.whl /tmp/wheels/
# The CPU build of the torch release the wheel pins; installed first so that no CUDA build is pulled in.
RUN pip install --no-cache-dir torch==2.14.1 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir /tmp/wheels/histomics_label-*.whl \
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
