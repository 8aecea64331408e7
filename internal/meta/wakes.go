package meta

import (
	"context"
	"time"
)

// Wake says that a version of a deployment was asked for through an
// edge: the router woke it (a request found no instance) at WokenAt and
// last saw a request for it at LastRequest. The scheduler keeps instances
// of a preview (non-active) version, or of an autostop deployment's
// active version, only while LastRequest is within the idle time
// (docs/design.md, "Scale to zero").
type Wake struct {
	DeploymentID string    `json:"deployment_id"`
	VersionID    string    `json:"version_id"`
	WokenAt      time.Time `json:"woken_at"`
	LastRequest  time.Time `json:"last_request"`
}

// WakeRef names one version of a deployment.
type WakeRef struct {
	DeploymentID string
	VersionID    string
}

// Wakes is the edges' share of scale to zero. Times come from the store's
// clock; every method is one transaction.
type Wakes interface {
	// Wake records that r was asked for now (woken_at and last_request
	// now), moves the placement generation and announces the change, so
	// that the scheduler places an instance. Unknown deployment or a
	// version not of it: ErrNotFound.
	Wake(ctx context.Context, r WakeRef) error
	// TouchWakes sets last_request to now for each of refs (a row is made
	// when there is none, with woken_at now). It moves no generation and
	// announces nothing: it only keeps running instances from going idle.
	// Refs to unknown deployments or versions are skipped.
	TouchWakes(ctx context.Context, refs []WakeRef) error
}
