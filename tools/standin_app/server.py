"""The stand-in WebAPI's HTTP endpoints and the SQL behind them.

* ``GET /health``: 200 ``{"status": "Healthy"}`` when every store's database answers ``SELECT 1``
  (ASP.NET's DbContext health check only asks whether it can connect), else 503 with the reason.
* ``GET /api/products``: the rows of ``Products`` as a JSON list.
* ``POST /api/products`` with ``{"code", "name", "description"}``: inserts a product
  (``gen_random_uuid()``, as the EF model's default) and, like ClassifiedAds' ProductCreated
  handler, an ``AuditLogEntries`` row (Action ``CREATED_PRODUCT``, ObjectId the product's id, Log
  the product as JSON) in the AuditLog store; 201 with the product and a Location header.
* ``GET /api/whereami``: the layout and, per store, host, port, database, schema and user (never
  the password).

Each request opens its own connections (one per store, as separate DbContexts do) and closes
them. Error messages and the request log never carry a password.
"""

from __future__ import annotations

import http.server
import json
import urllib.parse

import psycopg2
from psycopg2 import sql

from standin_app.config import AppConfig, Store

# ClassifiedAds writes the signed-in user's id; the stand-in has no users.
ANONYMOUS_USER = "00000000-0000-0000-0000-000000000000"
AUDIT_ACTION = "CREATED_PRODUCT"
MAX_BODY_BYTES = 1024 * 1024


class RequestError(Exception):
    """The request cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class StandinWebApi:
    """The application: endpoints as methods returning ``(status, payload)``."""

    def __init__(self, config: AppConfig):
        self.config = config

    def scrub(self, text: str) -> str:
        for password in self.config.passwords():
            text = text.replace(password, "********")
        return " ".join(text.split())

    def _connect(self, store: Store):
        try:
            return psycopg2.connect(**store.connect_kwargs)
        except psycopg2.Error as exc:
            where = store.public_view()
            raise RequestError(503, f"{store.spec.module} store unreachable ({where['host']}:{where['port']} "
                                    f"database {where['database']}): {self.scrub(str(exc))}") from None

    def health(self) -> tuple[int, dict]:
        checks, healthy = {}, True
        for key, store in self.config.stores.items():
            try:
                conn = self._connect(store)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                finally:
                    conn.close()
                checks[key] = "Healthy"
            except (RequestError, psycopg2.Error) as exc:
                checks[key] = f"Unhealthy: {self.scrub(str(exc))}"
                healthy = False
        return (200 if healthy else 503), {"status": "Healthy" if healthy else "Unhealthy", "checks": checks}

    def list_products(self) -> tuple[int, list]:
        store = self.config.stores["product"]
        conn = self._connect(store)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL('SELECT "Id"::text, "Code", "Name", "Description" FROM {} '
                                    'ORDER BY "CreatedDateTime", "Id"').format(_table(store)))
                rows = cur.fetchall()
        except psycopg2.Error as exc:
            raise RequestError(500, f"reading products failed: {self.scrub(str(exc))}") from None
        finally:
            conn.close()
        return 200, [{"id": id_, "code": code, "name": name, "description": description}
                     for id_, code, name, description in rows]

    def create_product(self, payload) -> tuple[int, dict]:
        product = validate_product(payload)
        store = self.config.stores["product"]
        conn = self._connect(store)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql.SQL('INSERT INTO {} ("Id", "Code", "Name", "Description", "CreatedDateTime") '
                                    'VALUES (gen_random_uuid(), %s, %s, %s, now()) RETURNING "Id"::text').format(
                    _table(store)), (product["code"], product["name"], product["description"]))
                product = {"id": cur.fetchone()[0], **product}
        except psycopg2.Error as exc:
            raise RequestError(500, f"creating the product failed: {self.scrub(str(exc))}") from None
        finally:
            conn.close()
        self._audit(product)
        return 201, product

    def _audit(self, product: dict) -> None:
        store = self.config.stores["auditlog"]
        log = json.dumps({"Id": product["id"], "Code": product["code"], "Name": product["name"],
                          "Description": product["description"]})
        conn = self._connect(store)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql.SQL('INSERT INTO {} ("Id", "UserId", "Action", "ObjectId", "Log", "CreatedDateTime") '
                                    "VALUES (gen_random_uuid(), %s, %s, %s, %s, now())").format(_table(store)),
                            (ANONYMOUS_USER, AUDIT_ACTION, product["id"], log))
        except psycopg2.Error as exc:
            raise RequestError(500, f"product {product['id']} created, but its audit entry failed: "
                                    f"{self.scrub(str(exc))}") from None
        finally:
            conn.close()

    def whereami(self) -> tuple[int, dict]:
        return 200, self.config.public_view()


def validate_product(payload) -> dict:
    """``{"code", "name", "description"}`` from a request body; ``code`` is required."""
    if not isinstance(payload, dict):
        raise RequestError(400, "the body must be a JSON object")
    product = {}
    for field in ("code", "name", "description"):
        value = payload.get(field)
        if value is not None and not isinstance(value, str):
            raise RequestError(400, f"'{field}' must be a string")
        product[field] = value
    if not product["code"]:
        raise RequestError(400, "'code' is required")
    return product


def _table(store: Store) -> sql.Composable:
    return sql.Identifier(store.schema, store.spec.table)


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes requests to the application set on the server (``server.app``)."""

    server_version = "ClassifiedAdsStandin/1.0"

    ROUTES = {
        ("GET", "/health"): "health",
        ("GET", "/api/products"): "list_products",
        ("POST", "/api/products"): "create_product",
        ("GET", "/api/whereami"): "whereami",
    }

    def do_GET(self):  # BaseHTTPRequestHandler's naming
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        app: StandinWebApi = self.server.app
        path = urllib.parse.urlsplit(self.path).path.rstrip("/") or "/"
        route = self.ROUTES.get((method, path))
        try:
            if route is None:
                known = {route_path for _method, route_path in self.ROUTES}
                raise RequestError(405 if path in known else 404, f"no route for {method} {path}")
            if method == "POST":
                status, payload = getattr(app, route)(self._json_body())
            else:
                status, payload = getattr(app, route)()
        except RequestError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except Exception as exc:  # pylint: disable=broad-except  # answer 500 like ASP.NET and stay up
            status, payload = 500, {"error": app.scrub(f"{type(exc).__name__}: {exc}")}
        self._send(status, payload, location=f"/api/products/{payload['id']}" if status == 201 else None)

    def _json_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise RequestError(413, "request body too large")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            raise RequestError(400, "the body is not JSON") from None

    def _send(self, status: int, payload, location: str | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)


def make_server(app: StandinWebApi, host: str, port: int) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.app = app
    return server
