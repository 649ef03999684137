"""Stand-in for the ClassifiedAds WebAPI, for tests and demos of the application steps.

A small HTTP service (Python standard library and psycopg2) that reads its database
connections exactly where ClassifiedAds does, so the configuration cutover, the application
control and the smoke checks can be exercised without .NET or Docker:

* legacy shape: ``Modules:Product:ConnectionStrings:Default`` and
  ``Modules:AuditLog:ConnectionStrings:Default``, one database per module, tables in ``public``;
* consolidated shape: the top-level ``ConnectionStrings:Default``, one database, tables in the
  schemas ``product`` and ``auditlog``.

Run it with ``PYTHONPATH=tools python -m standin_app --appsettings PATH --port N [--pidfile F]``;
:mod:`standin_app.config` resolves the configuration, :mod:`standin_app.server` serves
``/health``, ``/api/products`` and ``/api/whereami``, :mod:`standin_app.harness` starts it from tests.
"""
