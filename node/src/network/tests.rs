//! Two in-process nodes on 127.0.0.1 exercising the delivery protocol.
