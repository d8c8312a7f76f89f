# syntax=docker/dockerfile:1
# One image for every service: `todo-chatbot <command>` (serve, mcp-server, agent, handler ..., migrate).
#   docker build -t todo-chatbot:0.1.0 .            (Minikube: minikube image build -t todo-chatbot:0.1.0 .)
#   docker run --rm -p 8000:8000 -e AUTH_SECRET="$(openssl rand -hex 32)" todo-chatbot:0.1.0 serve --host 0.0.0.0
# Dependencies are pinned in requirements.lock and install from wheels: no compiler in either stage.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: a virtual environment with the locked dependencies, then the project itself ----
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first: this layer is reused until requirements.lock changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY mcp_server ./mcp_server
COPY event_handlers ./event_handlers
COPY agent ./agent
COPY todo_chatbot ./todo_chatbot
RUN pip install --no-deps . \
    && python -m compileall -q /opt/venv/lib

# ---- runtime: the virtual environment alone, as an unprivileged user ----
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/app --create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /home/app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["todo-chatbot"]
CMD ["serve", "--host", "127.0.0.1", "--port", "8000"]
