package db

// AuditQuery is auditQuery, for the plan test in package db_test.
var AuditQuery = auditQuery
