// The Go app for bench/grpc.bench.ts: example.UserService (examples/user-service/user.proto)
// served by grpc-go, answering what the grpc-js example answers — GetUser returns
// {id, name: "User <id>", email: "user-<id>@example.com"}, ListUsers streams `limit` such users.
// Messages are encoded with protowire by hand, so no generated code is needed: a codec registered
// under grpc-go's "proto" name passes the raw bytes through.
//
//	grpcgo <listen host:port>
//
// Prints "listening <addr>" once it accepts connections.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// raw is a message as bytes on the wire.
type raw struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*raw).b, nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*raw).b = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// field returns field 1 of a message: a string (GetUserRequest.id) or a varint (ListUsersRequest.limit).
func field1(b []byte) (s string, n uint64, err error) {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return "", 0, protowire.ParseError(l)
		}
		b = b[l:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeString(b)
			if m < 0 {
				return "", 0, protowire.ParseError(m)
			}
			return v, 0, nil
		}
		if num == 1 && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return "", 0, protowire.ParseError(m)
			}
			return "", v, nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return "", 0, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return "", 0, nil
}

func user(id string) *raw {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, id)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, "User "+id)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, "user-"+id+"@example.com")
	return &raw{b}
}

func getUser(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(raw)
	if err := dec(in); err != nil {
		return nil, err
	}
	id, _, err := field1(in.b)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return user(id), nil
}

func listUsers(_ any, stream grpc.ServerStream) error {
	in := new(raw)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	_, limit, err := field1(in.b)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	for i := uint64(0); i < limit; i++ {
		if err := stream.SendMsg(user(strconv.FormatUint(i, 10))); err != nil {
			return err
		}
	}
	return nil
}

var userService = grpc.ServiceDesc{
	ServiceName: "example.UserService",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "GetUser", Handler: getUser}},
	Streams:     []grpc.StreamDesc{{StreamName: "ListUsers", Handler: listUsers, ServerStreams: true}},
	Metadata:    "user.proto",
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: grpcgo <listen host:port>")
	}
	encoding.RegisterCodec(rawCodec{})
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&userService, struct{}{})
	fmt.Printf("listening %s\n", ln.Addr())
	log.Fatal(s.Serve(ln))
}
