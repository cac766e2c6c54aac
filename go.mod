module github.com/loopauth/loopauth

go 1.23
