-- post: a benign 2 KB JSON API body with 85 leaf values (post.json), as a
-- shop's checkout page sends it with fetch().
local req

function init(args)
  req = wrk.format("POST", apiPath, api, readFile(args[1] .. "/post.json"))
end

function request()
  return req
end
