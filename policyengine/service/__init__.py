"""The HTTP service of ``policyengine serve`` (FastAPI on uvicorn).

Public API: :func:`create_app` (the application factory), the settings it
takes (:class:`ServiceSettings`, :func:`load_service_settings`) and
:func:`hash_token` for writing token files. Modules: ``app`` (wiring),
``auth`` (bearer tokens and roles), ``limits`` (input limits, error
mapping), ``audit_routes`` and ``write_routes`` (REST API),
``webhooks_mlflow``, ``webhooks_generic`` and ``mlflow_events`` (registry
webhooks), ``operations`` (calls into the library), ``metrics``,
``mlflow_client``, ``deliveries``, ``runtime``, ``settings``, ``tracing``
(OpenTelemetry spans) and ``notify`` (signed notifications).
"""

from policyengine.service.app import create_app, create_app_from_env
from policyengine.service.auth import hash_token
from policyengine.service.settings import ServiceSettings, load_service_settings

__all__ = [
    "ServiceSettings",
    "create_app",
    "create_app_from_env",
    "hash_token",
    "load_service_settings",
]
