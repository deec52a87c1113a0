"""The sponsor: publishes a task's initial model and validation set, creates the task, sets its retention policy
and reclaims what its budget did not pay out."""
