//go:build !nethttp

package main

func callAPI(string) {}
