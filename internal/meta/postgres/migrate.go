package postgres

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/internal/meta/migrations"
)

// migrate applies the missing migrations with the shared runner
// (migrations.Apply) on one connection pinned from the pool, which holds the
// migration advisory lock (migrations.Postgres.Lock) for the whole run. It
// returns the schema the tables live in.
func (s *Store) migrate(ctx context.Context) (string, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close() // back to the pool
	var schema *string
	if err := c.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", err
	}
	if schema == nil {
		return "", fmt.Errorf("no schema of the search_path exists")
	}
	if _, err := migrations.Apply(ctx, c, s.d, func() int64 { return s.now().UnixNano() }); err != nil {
		return "", err
	}
	return *schema, nil
}
