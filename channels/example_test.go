package channels_test

import (
	"fmt"
	"slices"

	"github.com/bayou-pubsub/bayou/channels"
)

func ExampleExpand() {
	for _, p := range channels.Expand("/chat/room/42") {
		fmt.Println(p)
	}
	// Output:
	// /**
	// /chat/**
	// /chat/room/**
	// /chat/room/*
	// /chat/room/42
}

func ExampleGrammar() {
	for _, s := range []string{"/chat/room-1", "/chat/*", "/chat/room.1"} {
		fmt.Println(s, channels.ValidName(s), channels.ValidPattern(s), channels.Wide.ValidName(s))
	}
	// Output:
	// /chat/room-1 true false true
	// /chat/* false true false
	// /chat/room.1 false false true
}

func ExampleIndex() {
	x := channels.NewIndex[string]()
	x.Add("/chat/room", "alice")
	x.Add("/chat/*", "bob")
	x.Add("/chat/**", "alice") // alice matches twice but is delivered once
	x.Add("/news", "carol")

	subs := x.AppendMatch(nil, "/chat/room")
	slices.Sort(subs) // the order is unspecified
	fmt.Println(subs)

	removed, last := x.Remove("/news", "carol")
	fmt.Println(removed, last, x.Len())
	// Output:
	// [alice bob]
	// true true 3
}
