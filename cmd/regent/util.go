package main

import "sort"

func sortSlice[T any](s []T, less func(i, j int) bool) { sort.Slice(s, less) }
