// Package certs owns the edge's automatic HTTPS: certificates obtained from
// an ACME CA through certmagic, on demand, and only for hostnames that are
// registered domains of some deployment; stored in the metadata store
// (Storage, over meta.Certs) so that every edge process shares them.
package certs
