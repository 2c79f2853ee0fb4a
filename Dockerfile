# The Slicer CLI image that slicer_cli_web runs from the DSA job panel:
#   docker build -t histomics-label:latest .
#   then register it in the DSA (Slicer CLI Web → upload image "histomics-label:latest").
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/histomics_label
COPY setup.py README.md ./
COPY histomics_label ./histomics_label
# The CPU build of torch; install it first so no CUDA build is pulled in.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir . \
 && python -c "import histomics_label.core.extractors"

COPY slicer_cli ./slicer_cli
WORKDIR /opt/histomics_label/slicer_cli
ENV OMP_NUM_THREADS=4

# slicer_cli_web calls: docker run IMAGE --list_cli, IMAGE <Name> --xml, and IMAGE <Name> [args...]
ENTRYPOINT ["python", "-m", "slicer_cli_web.cli_list_entrypoint"]
