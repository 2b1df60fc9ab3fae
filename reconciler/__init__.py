"""The reconciler: database state, apply, dispatch, Huey tasks, flow runner, channels, service."""
