"""SQS-compatible queues: the durable store (:mod:`assignment.frontend.queues.store`); the API comes later."""
