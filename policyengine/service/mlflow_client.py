"""A small client for the MLflow 3 REST API, over httpx.

Owns only the calls the service makes back to the registry: read a model
version and its run, read one run artifact (a model card file), and read,
set or delete a registered model alias (used to revert an alias moved
without an ``allow`` decision). Paths follow the MLflow REST API
(``/api/2.0/mlflow/...``). It knows nothing of policies or the log.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

from policyengine.errors import PolicyEngineError

__all__ = ["MlflowClientError", "MlflowRestClient"]

_API = "/api/2.0/mlflow"
_MAX_ARTIFACT_BYTES = 1_048_576


class MlflowClientError(PolicyEngineError):
    """A call to the MLflow REST API failed (unreachable, non-2xx, bad body)."""

    code: ClassVar[str] = "mlflow_unavailable"


class MlflowRestClient:
    """Synchronous MLflow REST client bound to one tracking server."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=tracking_uri.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MlflowClientError(f"mlflow {method} {path} failed: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise MlflowClientError(
                f"mlflow {method} {path}: expected 2xx, got {resp.status_code} {resp.text[:200]}"
            )
        if not resp.content:
            return {}
        try:
            body = resp.json()
        except json.JSONDecodeError as exc:
            raise MlflowClientError(f"mlflow {method} {path}: response is not json") from exc
        return body if isinstance(body, dict) else {}

    def get_model_version(self, name: str, version: str) -> dict[str, Any]:
        """Return the ``model_version`` object (tags as a list of key/value)."""
        body = self._call(
            "GET", f"{_API}/model-versions/get", params={"name": name, "version": version}
        )
        return dict(body.get("model_version", {}))

    def get_run(self, run_id: str) -> dict[str, Any]:
        """Return the ``run`` object (info, data with params, metrics and tags)."""
        body = self._call("GET", f"{_API}/runs/get", params={"run_id": run_id})
        return dict(body.get("run", {}))

    def get_run_artifact(self, run_id: str, path: str) -> bytes | None:
        """Return one run artifact's bytes, or None when it does not exist."""
        try:
            resp = self._http.get("/get-artifact", params={"run_uuid": run_id, "path": path})
        except httpx.HTTPError as exc:
            raise MlflowClientError(f"mlflow artifact {path} failed: {type(exc).__name__}") from exc
        if resp.status_code in (400, 404):
            return None
        if resp.status_code >= 300:
            raise MlflowClientError(f"mlflow artifact {path}: expected 2xx, got {resp.status_code}")
        if len(resp.content) > _MAX_ARTIFACT_BYTES:
            raise MlflowClientError(
                f"mlflow artifact {path}: larger than {_MAX_ARTIFACT_BYTES} bytes"
            )
        return resp.content

    def get_alias(self, name: str, alias: str) -> str | None:
        """Return the version an alias points to, or None when unset."""
        try:
            body = self._call(
                "GET", f"{_API}/registered-models/alias", params={"name": name, "alias": alias}
            )
        except MlflowClientError as exc:
            if "got 404" in str(exc) or "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return None
            raise
        version = body.get("model_version", {}).get("version")
        return str(version) if version is not None else None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` of model ``name`` at ``version``."""
        self._call(
            "POST",
            f"{_API}/registered-models/alias",
            json={"name": name, "alias": alias, "version": str(version)},
        )

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from model ``name``."""
        self._call("DELETE", f"{_API}/registered-models/alias", json={"name": name, "alias": alias})
