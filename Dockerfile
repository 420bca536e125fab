# medical-notes API image. The builder fills a virtualenv from binary wheels; runtime-root trims the base
# image down to what the service runs on; the runtime stage starts from that root file system (one
# layer), copies the virtualenv next to the application code and runs as an unprivileged user.
# Works with the classic builder (no BuildKit features) on python:3.12-slim or on the Debian base
# that roles/base_images bootstraps from a mirror (python3 + python3-venv only).
ARG BASE_IMAGE=python:3.12-slim

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

# The classic builder leaves this stage's image untagged on the host once the build ends. The label
# lets the deployment find it: it keeps the newest one, tagged, as the layer cache of the next build
# and removes the ones it supersedes (roles/medical_notes_api/tasks/image.yml). The runtime stage
# starts from scratch, so the final image does not carry it.
LABEL org.medical-notes.build-stage=builder

# A PyPI mirror for sites without direct access.
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# binutils strips debug symbols from the wheels' extension modules. pg_isready is unpacked from the
# suite's PostgreSQL client package (postgresql-client-<major>, what the postgresql-client package
# depends on) without installing it or its Perl wrapper scripts and dependencies: the runtime needs
# only libpq5 for it (about 55 MB less than the client package, and a shorter build).
# Versions come from the base image's Debian suite (point releases replace exact versions on mirrors).
# (sh has no pipefail: an empty package name from the pipe stops the step at the test below.)
# hadolint ignore=DL3008,DL3003,DL4006
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends binutils; \
    client="$(apt-cache depends postgresql-client | sed -n 's/^ *Depends: \(postgresql-client-[0-9][0-9]*\)$/\1/p')"; \
    test -n "$client"; \
    cd /tmp; \
    apt-get download "$client"; \
    dpkg-deb -x /tmp/"$client"_*.deb /tmp/pg-client; \
    install -D -m 0755 -t /opt/pg/bin /tmp/pg-client/usr/lib/postgresql/*/bin/pg_isready; \
    rm -rf /var/lib/apt/lists/* /tmp/"$client"_*.deb /tmp/pg-client

# The optional extra CA (docker/build-ca/extra-ca.crt, e.g. a TLS-intercepting proxy's) only ever
# exists in this stage; the runtime stage copies nothing but the finished virtualenv and pg_isready.
COPY docker/build-ca/ /tmp/build-ca/
COPY requirements.lock requirements-terminology.lock /tmp/
COPY app/medical_notes/extraction/icd10cm_build.py /tmp/icd10cm_build.py

# requirements.lock pins every dependency, transitive ones included, with the sha256 of each file
# (`make lock` regenerates it from requirements.txt): --require-hashes refuses anything else, so a
# compromised or mistaken mirror cannot slip a different file in. Every pinned dependency ships
# manylinux wheels, so --only-binary keeps compilers out of the build and makes a missing wheel fail
# loudly instead of compiling for minutes.
# Not needed at run time: pip, setuptools (and the install RECORDs they use), the packages' test suites,
# type stubs, Cython sources, numpy's Fortran wrapper generator, C headers and static libraries, and
# debug symbols.
# The libraries that auditwheel bundled (*.libs) stay untouched: strip breaks their patched headers.
# --no-compile: the next step compiles every module once, in the layout the image keeps.
# ICD-10-CM is compiled here, with the pinned simple-icd-10-cm release installed into a throw-away
# directory, into the compact table the service loads (/opt/terminology); the package itself never
# enters the image.
RUN set -eu; \
    python3 -m venv /opt/venv; \
    if [ -f /tmp/build-ca/extra-ca.crt ]; then \
        pip_default_ca="$(/opt/venv/bin/python -c 'import pip._vendor.certifi as c; print(c.where())')"; \
        cat "$pip_default_ca" /tmp/build-ca/extra-ca.crt > /tmp/build-ca/pip-ca-bundle.pem; \
        export PIP_CERT=/tmp/build-ca/pip-ca-bundle.pem; \
        echo "builder: trusting the extra CA from docker/build-ca/extra-ca.crt"; \
    fi; \
    /opt/venv/bin/python -m pip install --no-compile --require-hashes --only-binary=:all: \
        --index-url "$PIP_INDEX_URL" -r /tmp/requirements.lock; \
    /opt/venv/bin/python -m pip install -q --no-compile --require-hashes --only-binary=:all: \
        --index-url "$PIP_INDEX_URL" --target /tmp/icd10cm-lib -r /tmp/requirements-terminology.lock; \
    PYTHONPATH=/tmp/icd10cm-lib /opt/venv/bin/python /tmp/icd10cm_build.py /opt/terminology/icd10cm.tsv.gz; \
    rm -rf /tmp/icd10cm-lib /tmp/icd10cm_build.py /tmp/requirements-terminology.lock; \
    /opt/venv/bin/python -m pip uninstall -y -q pip setuptools; \
    site_packages="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    find "$site_packages" -depth -type d -name tests -exec rm -rf {} +; \
    find "$site_packages" \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \
        -o -name '*.a' -o -name '*.c' -o -name RECORD \) -type f -delete; \
    rm -rf "$site_packages"/numpy/f2py "$site_packages"/numpy/_core/include "$site_packages"/numpy/_pyinstaller \
        "$site_packages"/numpy/random/_examples /opt/venv/bin/f2py /opt/venv/bin/numpy-config; \
    find "$site_packages" -name '*.so' -not -path '*.libs/*' -exec strip --strip-unneeded {} +; \
    rm -rf /tmp/build-ca /tmp/requirements.lock

# Third-party code the service never imports, then byte-code only (the image's largest savings):
# - fhir.resources ships three FHIR versions: R5 as the top-level modules, STU3 and R4B as subpackages.
#   The service imports only fhir.resources.R4B, whose models import nothing but each other (every
#   resource of a bundle entry is loaded by name from fhir.resources.R4B.*, hence all of R4B stays),
#   fhir_core and pydantic. Kept: the package's __init__ (imported on the way to R4B) and R4B.
# - numpy.distutils (a build tool, needs setuptools, which is gone) and numpy's conftest.py; faiss
#   asks numpy.distutils for CPU flags only under numpy < 2.
# - numpy.random, numpy.fft, numpy.polynomial, numpy.ma and numpy.testing: numpy imports them only
#   on first access (np.random etc.), and neither our code nor faiss's wrappers touch them.
#   numpy._core._simd is a test helper of numpy's SIMD dispatch that only numpy.distutils imported.
# - Every third-party module is compiled to a .pyc next to its source (compileall -b, the layout that
#   Python imports without the source), then the .py sources and the __pycache__ copies go: the
#   image would otherwise hold each module twice. Tracebacks still name file and line, without the
#   source text. anyio keeps its sources and __pycache__: its lazy importer reads its own
#   __init__.py to find its exports. Our code in /app/medical_notes keeps its sources.
# The import at the end proves that the stripped extension modules still load, and the byte-code-only
# packages import.
RUN set -eu; \
    site_packages="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    find "$site_packages"/fhir/resources -mindepth 1 -maxdepth 1 -not -name R4B -not -name __init__.py \
        -exec rm -rf {} +; \
    rm -rf "$site_packages"/numpy/distutils "$site_packages"/numpy/conftest.py "$site_packages"/numpy/random \
        "$site_packages"/numpy/fft "$site_packages"/numpy/polynomial "$site_packages"/numpy/ma \
        "$site_packages"/numpy/testing "$site_packages"/numpy/_core/_simd.*.so; \
    /opt/venv/bin/python -X no_debug_ranges -m compileall -q -b -j 0 -x '/anyio/' "$site_packages"; \
    find "$site_packages" -depth -type d -name __pycache__ -not -path '*/anyio/*' -exec rm -rf {} +; \
    find "$site_packages" -type f -name '*.py' -not -path '*/anyio/*' -delete; \
    /opt/venv/bin/python -c 'import anthropic, asyncpg, faiss, fastapi, fhir.resources.R4B.bundle, \
        httptools, numpy, openai, orjson, pydantic_core, uvicorn, uvloop'

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime-root

# Like the builder stage: an intermediate image the deployment keeps tagged as layer cache and prunes
# otherwise (roles/medical_notes_api/tasks/image.yml).
LABEL org.medical-notes.build-stage=runtime-root

# The runtime's root file system: the base image with libpq5 and the service user, minus what only
# installs and builds use. It becomes a single layer of the final image (FROM scratch below), so these
# deletions shrink the image instead of hiding files under a later layer.
# - libpq5 for pg_isready; the fixed UID lets volumes keep their ownership across images.
# - python3-venv and the pip/setuptools wheels it installs from (Debian base), or pip itself
#   (python:*-slim): the builder stage alone creates virtualenvs and runs pip.
# - apt and what only apt uses (gpgv, the archive keyring, libseccomp2, libxxhash0): nothing installs
#   packages into a running container (non-root, read-only root file system); dpkg stays, so the
#   package list can still be inspected.
# - The standard library as byte-code only, like the third-party packages (see the builder):
#   compiled next to the sources (compileall -b), then the sources and __pycache__ copies go.
# - apt's configuration and package lists, documentation, manual pages, translations and logs.
# Versions come from the base image's Debian suite (point releases replace exact versions on mirrors).
# hadolint ignore=DL3008,DL4006,SC2086
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends libpq5; \
    groupadd --system --gid 10001 appuser; \
    useradd --system --uid 10001 --gid appuser --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin appuser; \
    install -d -o appuser -g appuser -m 0755 /app/data/faiss_db; \
    if python3 -c 'import pip' 2>/dev/null; then \
        python3 -m pip uninstall -y -q --disable-pip-version-check pip setuptools wheel; \
    fi; \
    unneeded="$(dpkg-query -W -f='${Package}\n' \
        | grep -Ex 'python3(\.[0-9]+)?-venv|python3-(pip|setuptools|wheel)-whl|apt|libapt-pkg[0-9.]+|gpgv|debian-archive-keyring|libseccomp2|libxxhash0' \
        || true)"; \
    if [ -n "$unneeded" ]; then dpkg --purge $unneeded; fi; \
    stdlib="$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"; \
    python3 -X no_debug_ranges -m compileall -q -b -j 0 "$stdlib"; \
    find "$stdlib" -depth -type d -name __pycache__ -exec rm -rf {} +; \
    find "$stdlib" -name '*.py' \( -type f -o -type l \) -delete; \
    rm -rf /etc/apt /var/lib/apt /var/cache/apt /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old \
        /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*

# ---------------------------------------------------------------------------------------------------
FROM scratch AS runtime

# hadolint ignore=DL3067
COPY --from=runtime-root / /

# The base image's environment is not inherited from scratch: PATH and LANG are set here.
# No .pyc writes at run time (the root file system may be read-only): everything is compiled here.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FAISS_INDEX_DIR=/app/data/faiss_db \
    API_HOST=0.0.0.0 \
    API_PORT=8000

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/pg/bin/pg_isready /usr/local/bin/pg_isready
COPY --from=builder /opt/terminology /app/data/terminology
COPY docker/entrypoint.sh /usr/local/bin/medical-notes-entrypoint

WORKDIR /app
COPY app/data/guidelines /app/data/guidelines
COPY app/data/soap_notes /app/data/soap_notes
# Code last: a code change rebuilds only these two layers.
COPY app/medical_notes /app/medical_notes
RUN python -m compileall -q /app/medical_notes

# Numeric, so that runtimes can verify the user is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('API_PORT', '8000') + '/health', timeout=8)"]
ENTRYPOINT ["/usr/local/bin/medical-notes-entrypoint"]
CMD ["serve"]
