package replica

import (
	"database/sql"
	"fmt"
)

func (e *env) dump() string {
	db, _ := sql.Open("sqlite", e.db)
	defer db.Close()
	rows, _ := db.Query(`SELECT digest, region, state, attempts, reason, claim, next_try_at FROM blob_replicas`)
	out := ""
	for rows.Next() {
		var a, b, c, r, cl string
		var n, nt int64
		rows.Scan(&a, &b, &c, &n, &r, &cl, &nt)
		out += fmt.Sprintln(a[:15], b, c, n, r, cl, nt)
	}
	return out + fmt.Sprint(e.count("eu"), e.count("ap"))
}
