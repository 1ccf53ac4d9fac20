// Package crashtest holds the end-to-end crash test of the delivery
// pipeline: it builds the sportello binary, sends messages through the real
// API, kills the server with SIGKILL during the load and checks after a
// restart that every accepted message was processed exactly once.
package crashtest
