"""Training with ``keras.Model.fit``: run folders, callbacks, step-exact backups and progress."""
