"""Chart metadata against pyproject, and the Dockerfile's runtime stage."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.chart.rendering import CHART, REPO, chart, render

DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPILERS = re.compile(
    r"\b(gcc|g\+\+|clang|build-essential|make|cmake|libc6?-dev|python3?-dev|rustc|cargo)\b"
)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(DOCKERFILE):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def test_chart_app_version_is_the_project_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart().metadata["appVersion"] == project["version"]
    assert chart().metadata["name"] == "todo-chatbot" and chart().metadata["apiVersion"] == "v2"


def test_the_default_image_tag_is_the_app_version() -> None:
    images = {
        c["image"]
        for d in render("default").of_kind("Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"todo-chatbot:{chart().metadata['appVersion']}"}


def test_dockerfile_builds_on_python_311_slim_in_two_stages() -> None:
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions(DOCKERFILE) if keyword == "ARG" and "=" in rest
    )
    bases = [stage[0][1].split()[0] for stage in stages()]
    assert len(bases) >= 2
    assert {args.get(base.strip("${}"), base) for base in bases} == {"python:3.11-slim"}


def test_dockerfile_installs_the_lock_then_the_project_without_dependencies() -> None:
    builder = " ".join(rest for keyword, rest in stages()[0] if keyword == "RUN")
    assert "-r requirements.lock" in builder and "--no-deps ." in builder
    assert builder.index("requirements.lock") < builder.index("--no-deps")


def test_dockerfile_runtime_stage_is_small_unprivileged_and_self_checking() -> None:
    final = stages()[-1]
    keywords = [keyword for keyword, _ in final]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "USER must be a numeric non-root uid (runAsNonRoot checks it)"
    healthcheck = " ".join(rest for keyword, rest in final if keyword == "HEALTHCHECK")
    assert "urllib" in healthcheck and "http://127.0.0.1:8000/healthz" in healthcheck
    assert ("ENTRYPOINT", '["todo-chatbot"]') in final
    assert "CMD" in keywords
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert copies and all(rest.startswith("--from=") for rest in copies), (
        "the final stage copies only the venv"
    )
    for keyword, rest in final:
        if keyword == "RUN":
            assert not ("apt-get install" in rest and COMPILERS.search(rest)), rest
            assert "pip install" not in rest, "packages are installed in the builder stage"


@pytest.mark.parametrize("ignored", [".venv", ".git", "tests", ".env", "*.db"])
def test_dockerignore_keeps_the_context_small_and_secret_free(ignored: str) -> None:
    patterns = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert ignored in patterns


def test_the_chart_needs_only_files_it_ships() -> None:
    assert {p.name for p in CHART.glob("values*.yaml")} == {
        "values.yaml",
        "values-minikube.yaml",
        "values-aks.yaml",
    }
    assert (CHART / "templates" / "NOTES.txt").is_file() and (CHART / "values.schema.json").is_file()
