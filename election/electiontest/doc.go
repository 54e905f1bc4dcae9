// Package electiontest is the lock and election suite that every kv driver
// runs against its real server: one leader at a time, watch-driven handover,
// failover after a crash, stepping down when cut off, fencing and health.
package electiontest
