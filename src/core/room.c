/* Every room library compiles this unit too, so that a room may be empty while it is being written. */
typedef int cddp_room_unit;
