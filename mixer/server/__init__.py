"""The gRPC front-ends (istio.mixer.v1.Mixer), health, reflection, the monitoring HTTP side, the admin page.

Modules: `app` (start the servers), `mixer_api` (the Mixer v1 front-end), `envoy` (Envoy's services),
`frontend` (what they share: refusals as gRPC statuses, counted), `monitoring`, `stats` and `admin` (the
introspection page, docs/admin.md). Import from them directly;
this package imports nothing. The Dispatcher protocol and outcome types the front-ends call are below
this package, in mixerd.dispatch.
"""
