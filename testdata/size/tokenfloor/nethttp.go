//go:build nethttp

package main

import (
	"fmt"
	"net/http"
	"os"
)

// callAPI calls the API at $API_URL, when set, with the token: the
// reason a CLI loads its token. The benchmark leaves it unset; the code
// is linked all the same.
func callAPI(token string) {
	api := os.Getenv("API_URL")
	if api == "" {
		return
	}
	req, err := http.NewRequest("GET", api, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
}
