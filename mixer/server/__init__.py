"""The gRPC front-ends (istio.mixer.v1.Mixer), health, reflection and the monitoring HTTP side.

Modules: `app` (start the servers), `dispatch` (the Dispatcher protocol and outcome types the rule
engine implements), `mixer_api` (the Mixer v1 front-end), `monitoring` and `stats`. Import from them
directly; this package imports nothing, so the runtime can use `dispatch` without loading the servers.
"""
