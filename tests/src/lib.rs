//! Test doubles for end-to-end tests: a Kubernetes API server that speaks the real HTTP API, a
//! Job controller that runs the real `nas-runner` as local processes, and an S3 server.
