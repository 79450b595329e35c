from edge_demo.runtime import native_logs

native_logs.hide_for_commands()  # before TensorFlow is imported; a no-op outside the project's commands
