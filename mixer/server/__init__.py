"""The gRPC front-ends (istio.mixer.v1.Mixer), health, reflection, the monitoring HTTP side, the admin page.

Modules: `app` (start the servers), `dispatch` (the Dispatcher protocol and outcome types the rule
engine implements), `mixer_api` (the Mixer v1 front-end), `monitoring`, `stats` and `admin` (the
introspection page, docs/admin.md). Import from them directly; this package imports nothing, so the
runtime can use `dispatch` without loading the servers.
"""
