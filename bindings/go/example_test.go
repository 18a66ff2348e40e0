package peepool_test

import (
	"context"
	"errors"
	"fmt"

	peepool "github.com/peepool/peepool/bindings/go"
)

func ExampleOpen() {
	pool, err := peepool.Open("sqlite::memory:?max_connections=4&timeout=5")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()

	ctx := context.Background()
	conn, err := pool.Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := conn.Exec(ctx, "INSERT INTO users (name, email) VALUES (?, ?), (?, ?)",
		"charlie", "charlie@example.com", "dana", nil)
	fmt.Println("inserted", n)

	rows, err := conn.Query(ctx, "SELECT id, name, email FROM users ORDER BY id")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		var email *string // nil for NULL
		if err := rows.Scan(&id, &name, &email); err != nil {
			fmt.Println(err)
			return
		}
		if email == nil {
			fmt.Println(id, name, "(no email)")
		} else {
			fmt.Println(id, name, *email)
		}
	}

	_, err = conn.Exec(ctx, "SELECT * FROM missing")
	var perr *peepool.Error
	if errors.As(err, &perr) {
		fmt.Println(perr.Status == peepool.StatusDatabase, perr.Message)
	}
	// Output:
	// inserted 2
	// 1 charlie charlie@example.com
	// 2 dana (no email)
	// true no such table: missing
}
