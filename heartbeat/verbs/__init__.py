"""The verbs other than check, each a short function: `now` comes in, values go out;
the command line prints them."""
