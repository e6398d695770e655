module github.com/alignkit/align

go 1.26.8
