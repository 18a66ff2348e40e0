module github.com/peepool/peepool/bindings/go

go 1.19
