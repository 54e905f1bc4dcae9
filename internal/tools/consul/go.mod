module github.com/regentkv/regent/internal/tools/consul

go 1.26.8

replace launchpad.net/gocheck => github.com/go-check/check v0.0.0-20140225173054-eb6ee6f84d0a
