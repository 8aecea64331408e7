package meta

// Full is every capability a metadata backend has: both backends (SQLite
// and PostgreSQL) implement all of it, and assert so at compile time. The
// composition root (internal/server) holds the store as a Full and hands
// each consumer the narrow interface it declares (gc.Store,
// registry.Store, meta.Leases, …), so a missing capability is a compile
// error.
type Full interface {
	Store
	Watcher
	Leases
	GC
	Policies
	OCIGC
	Registry
	Uploads
	UploadCounter
	Tokens
	Derivations
	Replicas
	Certs
	Hosts
	Scheduling
	Wakes
	Leader
	ContentIndex
	Builds
}
