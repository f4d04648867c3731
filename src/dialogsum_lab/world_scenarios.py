"""The miniature world's vocabulary: slot pools and fourteen everyday scenarios, as data.

Written for this project (nothing here is taken from DialogSum or any other dataset). `world.py` turns these
tables into dialogues. In every text, `{a}` and `{b}` stand for the two speakers' roles (`a` is the one who
wants something: a customer, a patient, a tenant; `b` the one who helps) and become `#Person1#` / `#Person2#`
by who speaks first; any other `{slot}` is drawn from the pool the scenario names for it.

A scenario has: its topics (paraphrases: the first is the training label), its slots, its turns in order
(each with several phrasings; a turn may be optional, and a *detail* turn adds a clause to the summary), at
least three summary templates (paraphrased references), what the wanting speaker wants (an intent sentence)
and questions with their answers about the dialogue.
"""

from dataclasses import dataclass, field

COLOURS = ("blue", "black", "white", "red", "green", "grey", "brown", "yellow")


def _combine(pattern: str, *parts: tuple[str, ...]) -> tuple[str, ...]:
    """Every combination of `parts` in `pattern`: large pools of values from a few words each, so a model has to
    copy a value from the dialogue rather than remember a short list."""
    out = [()]
    for words in parts:
        out = [combo + (w,) for combo in out for w in words]
    return tuple(pattern.format(*combo) for combo in out)


# Open pools: a quarter of each is held out, so validation and test dialogues carry names, places and things
# (or combinations of words) no training dialogue contains. Closed pools (days, times, counts) are shared.
OPEN_POOLS = {
    "first": ("Grace", "Tom", "Anna", "Wei", "Carlos", "Priya", "Jonas", "Maria", "Kenji", "Fatima", "Oliver",
              "Sofia", "Ahmed", "Hannah", "Pedro", "Yuki", "Daniel", "Amara", "Lukas", "Chloe", "Ravi", "Elena",
              "Samuel", "Mei", "Omar", "Julia", "Viktor", "Nora", "Ethan", "Leila", "Mateo", "Ingrid", "Kwame",
              "Rosa", "Felix", "Aisha", "Hugo", "Clara", "Tariq", "Emma", "Diego", "Lena", "Arjun", "Zoe", "Marco",
              "Sara", "Ivan", "Helen", "Kofi", "Alice"),
    "surname": ("Miller", "Chen", "Garcia", "Novak", "Okafor", "Schmidt", "Tanaka", "Rossi", "Patel", "Dubois",
                "Kowalski", "Silva", "Jensen", "Haddad", "Murphy", "Nguyen", "Larsen", "Costa", "Fischer", "Brown",
                "Ivanova", "Moreau", "Singh", "Walker", "Berg", "Lopez", "Khan", "Weber", "Evans", "Sato"),
    "restaurant": _combine("the {} {}", ("Golden", "Blue", "Red", "Green", "Silver", "Old", "Little", "Happy",
                                         "Royal", "Lucky", "Rusty", "Olive"),
                           ("Dragon", "Anchor", "Lantern", "Fork", "Spoon", "Garden", "Kitchen", "Table", "Oven",
                            "Lemon", "Harbour", "Tree")),
    "clothing": _combine("a {} {}", COLOURS, ("jacket", "sweater", "dress", "coat", "shirt", "scarf", "belt", "hat",
                                              "skirt", "raincoat")),
    "symptom": ("a sore throat", "a headache", "a bad cough", "back pain", "an earache", "a skin rash", "a fever",
                "a stomach ache", "a sprained ankle", "a runny nose", "sore eyes", "a toothache"),
    "lost_item": _combine("{} {}", COLOURS, ("wallet", "umbrella", "phone", "scarf", "backpack", "watch", "notebook",
                                             "camera", "charger", "water bottle")),
    "spot": ("under the sofa", "in the car", "on the kitchen table", "in the coat pocket", "behind the door",
             "in the bathroom", "on the bookshelf", "in the garden", "under the bed", "next to the printer",
             "in the laundry basket", "on the balcony"),
    "job": ("sales assistant", "nurse", "software developer", "chef", "accountant", "teacher", "graphic designer",
            "receptionist", "electrician", "translator", "project manager", "librarian"),
    "company": _combine("{}{}", ("Bright", "North", "Blue", "Oak", "Sun", "River", "Maple", "Green", "Harbor",
                                 "Silver", "Clear", "Summit"), ("way", "star", "peak", "ridge", "field", "line",
                                                                "stone", "gate")),
    "city": ("Boston", "Madrid", "Lyon", "Osaka", "Toronto", "Porto", "Vienna", "Dublin", "Seattle", "Milan", "Prague",
             "Oslo", "Denver", "Nairobi", "Lisbon", "Glasgow", "Berlin", "Chicago", "Seville", "Kyoto", "Montreal",
             "Naples", "Krakow", "Bergen", "Austin", "Cairo", "Munich", "Sydney", "Quebec", "Turin", "Geneva",
             "Bristol"),
    "appliance": ("washing machine", "dishwasher", "heater", "fridge", "oven", "shower", "kitchen sink", "boiler",
                  "air conditioner", "front door lock", "toilet", "dryer"),
    "hotel": _combine("the {} {}", ("Grand", "Seaside", "Park", "City", "Lakeside", "Old Mill", "Riverside", "Royal",
                                    "Garden", "Harbour", "Aurora", "Meridian"), ("Hotel", "Inn", "Lodge")),
    "purchase": _combine("a {} {}", COLOURS, ("toaster", "desk lamp", "coffee maker", "kettle", "hair dryer",
                                              "blender", "travel bag", "alarm clock", "phone case", "rice cooker")),
    "dish": _combine("a {} {}", ("chicken", "beef", "lamb", "tofu", "mushroom", "fish", "prawn", "vegetable"),
                     ("curry", "burger", "pizza", "salad", "wrap", "soup", "pie", "risotto", "taco", "noodle bowl")),
    "street": _combine("{} {}", ("Elm", "Park", "Hill", "Station", "Church", "River", "Oak", "Mill", "King",
                                 "Garden", "Bridge", "Lake", "Maple", "Cedar", "Queen", "Market"),
                       ("Street", "Road", "Lane", "Avenue")),
    "activity": ("see a film", "go bowling", "play tennis", "visit the museum", "go to a concert", "have a picnic",
                 "go swimming", "watch the football match", "go hiking", "try the new cafe", "go to the market",
                 "play chess"),
    "venue": ("the cinema on Main Street", "the park", "the sports centre", "the station", "the town square",
              "the library steps", "the bus stop", "the harbour", "the old bridge", "the shopping centre",
              "the museum entrance", "the corner cafe"),
    "subject": ("history", "chemistry", "gardening", "French cooking", "astronomy", "photography", "economics",
                "poetry", "robotics", "world music", "sailing", "architecture"),
    "car": _combine("a {} {}", COLOURS, ("small car", "electric car", "van", "family car", "convertible",
                                         "estate car", "pickup truck")),
    "haircut": ("a short haircut", "a trim", "a new colour", "a bob", "a perm", "a fringe trim", "a shave",
                "a wash and blow-dry"),
}
CLOSED_POOLS = {
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "time": ("six", "half past six", "seven", "half past seven", "eight", "nine", "ten", "eleven", "noon",
             "two", "three", "four", "five"),
    "count": ("two", "three", "four", "five", "six", "seven", "eight"),
    "price": ("ten dollars", "fifteen dollars", "twenty dollars", "twenty-five dollars", "thirty dollars",
              "forty dollars", "fifty dollars", "sixty dollars", "eighty dollars", "a hundred dollars"),
    "size": ("small", "medium", "large", "extra large"),
    "days_n": ("two", "three", "four", "five", "six", "ten"),
    "years": ("two", "three", "four", "five", "six", "eight"),
    "minutes": ("twenty", "thirty", "forty", "forty-five", "fifty"),
    "room": ("a single room", "a double room", "a twin room", "a suite"),
    "drink": ("a lemonade", "a cola", "an iced tea", "a bottle of water", "an orange juice", "a ginger beer"),
    "fault": ("is broken", "stopped working", "makes a strange noise", "does not turn on", "is cracked"),
    "problem": ("is leaking", "is making a loud noise", "won't turn on", "keeps stopping", "smells of burning"),
    "advice": ("rest for a few days", "drink plenty of water", "take the tablets twice a day", "come back in a week",
               "avoid sport for a while", "use the cream every morning"),
}


@dataclass(frozen=True)
class Turn:
    """One turn of `role` (a or b), said in one of its phrasings. Optional turns appear in about half the
    dialogues; a detail turn's `note` (paraphrases of one clause) then joins the summary."""

    role: str
    phrasings: tuple[str, ...]
    optional: bool = False
    note: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    topics: tuple[str, ...]
    slots: dict[str, str]  # slot in the texts -> pool name
    turns: tuple[Turn, ...]
    summaries: tuple[str, ...]  # paraphrases; `{notes}` takes the detail clauses
    intents: tuple[str, ...]  # what `a` wants, as one sentence
    questions: tuple[tuple[str, str], ...]  # (question, answer)
    b_opens: float = 0.5  # how often `b` greets first (and so becomes #Person1#)
    greeting: tuple[str, ...] = field(default=("Hello, how can I help you?",))


def T(role: str, *phrasings: str, optional: bool = False, note: tuple[str, ...] = ()) -> Turn:  # noqa: N802
    return Turn(role, phrasings, optional, note)


SCENARIOS = (
    Scenario(
        "restaurant", ("booking a table", "restaurant reservation", "reserving a table"),
        {"place": "restaurant", "n": "count", "day": "day", "time": "time", "first": "first", "surname": "surname"},
        (T("a", "Hi, is this {place}? I'd like to book a table for {n} on {day}.", "Hello, could I reserve a table at "
           "{place} for {n} people this {day}?", "Good evening. Does {place} have a table for {n} on {day}?"),
         T("b", "Certainly. What time would you like?", "Let me check. For what time?", "Yes, that's possible. What "
           "time?"),
         T("a", "At {time}, please.", "Around {time}, if possible.", "{time} would be perfect."),
         T("a", "Could we sit near the window?", "Is there a table by the window?", optional=True,
           note=("asks for a table by the window", "would like to sit near the window")),
         T("b", "That's fine. May I have your name?", "No problem. What name is it under?", "Done. Your name, please?"),
         T("a", "It's {first} {surname}.", "{first} {surname}.", "Under {surname}, please. {first} {surname}."),
         T("a", "It's my mother's birthday, by the way.", "We're celebrating a birthday.", optional=True,
           note=("mentions it is a birthday", "says they are celebrating a birthday")),
         T("b", "Thank you, {surname}. A table for {n} on {day} at {time}.", "All set: {n} people, {day}, {time}. "
           "See you then.")),
        ("{a} books a table for {n} at {place} on {day} at {time}{notes}.",
         "{a} reserves a table at {place} for {n} people on {day} at {time}{notes}.",
         "{a} calls {place} and gets a table for {n} on {day} at {time}{notes}."),
        ("{a} wants to book a table for {n} at {place}.", "{a} would like a table at {place} on {day}."),
        (("When is the table for?", "{day} at {time}"), ("How many people is the table for?", "{n}"),
         ("Which restaurant does {a} call?", "{place}"), ("What is the name of the booking?", "{first} {surname}")),
        greeting=("Good evening, {place}. How can I help you?", "Hello, {place} speaking.",
                  "Thank you for calling {place}.")),
    Scenario(
        "clothes", ("buying clothes", "shopping for clothes", "clothes shopping"),
        {"item": "clothing", "size": "size", "price": "price", "day": "day"},
        (T("a", "Excuse me, I'm looking for {item}.", "Hi, do you have {item}?", "Hello, I need {item}."),
         T("b", "Sure, what size do you wear?", "Of course. Which size?", "We do. What size are you?"),
         T("a", "{size}, I think.", "Usually {size}.", "I'm a {size}."),
         T("b", "Here you are. You can try it on over there.", "This one is {size}. The fitting room is on the left."),
         T("a", "It fits well. How much is it?", "Perfect. What does it cost?", "I like it. How much?"),
         T("b", "It's {price}.", "That's {price}.", "{price}, and it's on sale today."),
         T("a", "Do you have it in another colour?", "Does it come in green?", optional=True,
           note=("asks about other colours", "wants to know about other colours")),
         T("a", "I'll take it. Can I pay by card?", "Great, I'll buy it. Card is fine?", "I'll take it, by card."),
         T("b", "Yes, of course. You can return it until {day}.", "Card is fine. Keep the receipt to return it by "
           "{day}.")),
        ("{a} buys {item} in {size} for {price}{notes}.", "{a} pays {price} by card for {item}, size {size}{notes}.",
         "After trying it on, {a} buys {item} in size {size} for {price}{notes}."),
        ("{a} wants to buy {item}.", "{a} is looking for {item} in {size}."),
        (("What does {a} buy?", "{item}"), ("How much does it cost?", "{price}"), ("What size does {a} wear?",
                                                                                  "{size}"),
         ("How does {a} pay?", "by card")),
        greeting=("Good morning, can I help you find something?", "Hi there, are you looking for anything special?")),
    Scenario(
        "doctor", ("seeing a doctor", "a visit to the doctor", "health problem"),
        {"symptom": "symptom", "n": "days_n", "advice": "advice", "day": "day", "surname": "surname"},
        (T("b", "Come in, please. I'm Dr. {surname}. What seems to be the problem?", "Good morning, I'm Dr. {surname}. "
           "What brings you here today?", "Hello, Dr. {surname} here. How can I help you today?"),
         T("a", "I've had {symptom} for {n} days.", "I have {symptom}. It started {n} days ago.",
           "For {n} days now I've had {symptom}."),
         T("b", "I see. Have you taken anything for it?", "Did you take any medicine?", "Any medicine so far?"),
         T("a", "Just some tea and honey.", "No, nothing yet.", "Only a painkiller yesterday."),
         T("a", "I also can't sleep well.", "It keeps me awake at night.", optional=True,
           note=("cannot sleep well", "also has trouble sleeping")),
         T("b", "Let me have a look. It's nothing serious. You should {advice}.", "It doesn't look serious. Please "
           "{advice}.", "Nothing to worry about. I'd like you to {advice}."),
         T("a", "Thank you, Dr. {surname}.", "Thanks, doctor.", "Okay, I will."),
         T("b", "Come back on {day} if it isn't better.", "If it gets worse, see me again on {day}.")),
        ("{a} has had {symptom} for {n} days, and Dr. {surname} tells {a} to {advice}{notes}.",
         "{a} sees a doctor about {symptom}. The doctor says it is not serious and advises {a} to {advice}{notes}.",
         "{a} visits Dr. {surname} with {symptom} and is told to {advice} and to come back on {day}{notes}."),
        ("{a} wants the doctor to look at {symptom}.", "{a} needs help with {symptom}."),
        (("What is wrong with {a}?", "{symptom}"), ("For how long has {a} had it?", "{n} days"),
         ("What does the doctor advise?", "{advice}"), ("When should {a} come back?", "on {day}")),
        b_opens=1.0),
    Scenario(
        "lost_item", ("looking for a lost item", "a lost item", "finding lost things"),
        {"item": "lost_item", "spot": "spot", "first": "first", "time": "time"},
        (T("a", "Have you seen my {item}? I can't find it anywhere.", "I've lost my {item} again.",
           "{first}, do you know where my {item} is?"),
         T("b", "When did you last have it?", "Where did you have it last?", "Did you look in your bag?"),
         T("a", "This morning, before {time}.", "I had it at {time}, I'm sure.", "I checked my bag twice."),
         T("b", "Did you look {spot}?", "What about {spot}?", "Try {spot}."),
         T("a", "I need it for work today.", "I'm already late.", optional=True,
           note=("is in a hurry", "needs it urgently")),
         T("a", "Oh, here it is, {spot}! Thanks.", "Yes! It was {spot}. Thank you.", "Found it {spot}. You're a star."),
         T("b", "You should keep it in one place.", "Maybe put it by the door next time.", "No problem.")),
        ("{a} can't find the {item}, and {b} suggests looking {spot}, where {a} finds it{notes}.",
         "{a} has lost the {item}. With {b}'s help, {a} finds it {spot}{notes}.",
         "{b} helps {a} look for the {item}, which turns up {spot}{notes}."),
        ("{a} wants to find the {item}.", "{a} is looking for the {item}."),
        (("What has {a} lost?", "the {item}"), ("Where is it found?", "{spot}"),
         ("Who helps {a}?", "{b}")),
        b_opens=0.0),
    Scenario(
        "job_interview", ("job interview", "an interview", "applying for a job"),
        {"job": "job", "company": "company", "years": "years", "old_job": "job", "day": "day"},
        (T("b", "Thanks for coming to {company}. Please tell me about yourself.", "Welcome to {company}. Shall we "
           "start?", "Good morning. Why did you apply to {company}?"),
         T("a", "I'm applying for the {job} position.", "I'd like to work here as a {job}.", "I saw your advert for "
           "a {job}."),
         T("b", "What did you do before?", "Tell me about your last job.", "What is your experience?"),
         T("a", "I worked as a {old_job} for {years} years.", "For {years} years I was a {old_job}.",
           "I've been a {old_job} for {years} years."),
         T("a", "I also speak three languages.", "I'm good with numbers, too.", optional=True,
           note=("mentions other skills", "talks about other skills")),
         T("b", "Why do you want to leave?", "Why do you want to change jobs?"),
         T("a", "I want more responsibility.", "I'd like a new challenge.", "I want to grow in my career."),
         T("b", "Could you start on {day}?", "We'll let you know by {day}.", "Can you start next {day}?"),
         T("a", "Yes, that works for me.", "That's fine. Thank you.")),
        ("{a} has a job interview at {company} for a {job} position and has worked as a {old_job} for {years} "
         "years{notes}.",
         "{b} interviews {a} for the {job} job at {company}. {a} was a {old_job} for {years} years{notes}.",
         "{a} applies to be a {job} at {company}, explaining {years} years as a {old_job}{notes}."),
        ("{a} wants to work as a {job} at {company}.", "{a} wants the {job} job."),
        (("Which job does {a} apply for?", "{job}"), ("What was {a}'s last job?", "{old_job}"),
         ("How long did {a} work there?", "{years} years"), ("Which company is hiring?", "{company}")),
        b_opens=1.0),
    Scenario(
        "train_ticket", ("buying a train ticket", "train travel", "booking a trip"),
        {"city": "city", "day": "day", "time": "time", "price": "price"},
        (T("a", "I'd like a ticket to {city}, please.", "One ticket to {city}, please.", "Can I get a ticket to "
           "{city}?"),
         T("b", "Single or return?", "One way or return?", "When would you like to travel?"),
         T("a", "A return, leaving on {day}.", "Return, please. I'm going on {day}.", "On {day}, and back the next "
           "day."),
         T("b", "There's a train at {time}. That's {price}.", "The {time} train is {price}.",
           "The next one leaves at {time}; it costs {price}."),
         T("a", "Is there a discount for students?", "Do you have a cheaper seat?", optional=True,
           note=("asks about a discount", "asks for a cheaper fare")),
         T("a", "Fine, I'll take it.", "Okay, the {time} one, please.", "Great, here's my card."),
         T("b", "Here's your ticket. Platform four.", "Have a good trip to {city}.")),
        ("{a} buys a return ticket to {city} for {day}, on the {time} train, for {price}{notes}.",
         "{a} books a trip to {city}: the {time} train on {day}, costing {price}{notes}.",
         "{b} sells {a} a ticket to {city} for the {time} train on {day} at {price}{notes}."),
        ("{a} wants to travel to {city}.", "{a} wants a train ticket to {city}."),
        (("Where is {a} going?", "to {city}"), ("When does the train leave?", "at {time} on {day}"),
         ("How much is the ticket?", "{price}")),
        greeting=("Next, please. Where to?", "Good morning, how can I help?")),
    Scenario(
        "repair", ("a repair at home", "calling the landlord", "fixing something at home"),
        {"appliance": "appliance", "problem": "problem", "day": "day", "time": "time", "first": "first"},
        (T("a", "Hi, this is {first} from flat three. My {appliance} {problem}.", "Hello, the {appliance} in my flat "
           "{problem}.", "Sorry to bother you, but my {appliance} {problem}."),
         T("b", "Oh no. Since when?", "When did it start?", "How long has that been going on?"),
         T("a", "Since yesterday evening.", "Since last night.", "It started this morning."),
         T("a", "There's water on the floor.", "The whole kitchen is wet.", optional=True,
           note=("says there is water on the floor", "mentions water on the floor")),
         T("b", "I'll send someone to fix it on {day} at {time}.", "A repair person can come on {day} at {time}.",
           "I can have it repaired on {day}, around {time}."),
         T("a", "That's fine. I'll be home.", "Good, I'll be in.", "Could it be earlier? Well, {day} is okay."),
         T("b", "Great. Sorry for the trouble.", "Thanks for telling me.")),
        ("{a} tells {b} that the {appliance} {problem}, and {b} arranges a repair on {day} at {time}{notes}.",
         "{a}'s {appliance} {problem}. {b} will send someone on {day} at {time}{notes}.",
         "{a} reports that the {appliance} {problem}; it will be repaired on {day} at {time}{notes}."),
        ("{a} wants the {appliance} repaired.", "{a} needs someone to fix the {appliance}."),
        (("What is broken?", "the {appliance}"), ("When will it be repaired?", "on {day} at {time}"),
         ("What is wrong with it?", "it {problem}")),
        greeting=("Hello, this is the landlord.", "Hi, building management, how can I help?")),
    Scenario(
        "hotel", ("checking in at a hotel", "hotel check-in", "staying at a hotel"),
        {"hotel": "hotel", "room": "room", "n": "days_n", "time": "time", "surname": "surname"},
        (T("a", "Hi, I have a reservation under {surname}.", "Good evening, checking in. The name is {surname}.",
           "Hello, I booked a room. My name is {surname}."),
         T("b", "Welcome to {hotel}. Yes, {room} for {n} nights.", "Let me see. {room} at {hotel} for {n} nights, "
           "correct?", "Found it: {room}, {n} nights here at {hotel}."),
         T("a", "That's right.", "Yes, exactly.", "Correct."),
         T("a", "Could I have a quiet room?", "Is there a room away from the lift?", optional=True,
           note=("asks for a quiet room", "would like a quiet room")),
         T("b", "Breakfast is served until {time}.", "Breakfast is from six until {time}.", "You can have breakfast "
           "until {time}."),
         T("a", "Great. Is there wifi?", "Thanks. And the wifi password?", "Lovely, thank you."),
         T("b", "Yes, it's on your key card. Enjoy your stay.", "Here is your key. Enjoy your stay at {hotel}.")),
        ("{a} checks in at {hotel} for {n} nights in {room}; breakfast is until {time}{notes}.",
         "{b} checks {a} into {room} at {hotel} for {n} nights{notes}.",
         "{a} arrives at {hotel} with a booking for {room} for {n} nights and hears breakfast ends at {time}{notes}."),
        ("{a} wants to check in at {hotel}.", "{a} has a room booked at {hotel}."),
        (("Which hotel is it?", "{hotel}"), ("How many nights does {a} stay?", "{n} nights"),
         ("What kind of room is it?", "{room}"), ("Until when is breakfast?", "until {time}")),
        greeting=("Good evening, welcome to {hotel}.", "Hello, checking in?")),
    Scenario(
        "return", ("returning a purchase", "a refund", "a faulty product"),
        {"item": "purchase", "fault": "fault", "day": "day", "price": "price"},
        (T("a", "Hello, I bought {item} here on {day}, and it {fault}.", "I'd like to return {item}. It {fault}.",
           "Hi. This is {item} I bought on {day}; it {fault}."),
         T("b", "I'm sorry to hear that. Do you have the receipt?", "Oh dear. Have you got your receipt?"),
         T("a", "Yes, here it is.", "Here you are.", "Yes, it was {price}."),
         T("a", "It was a present for my son.", "I only used it once.", optional=True,
           note=("says it was used only once", "explains it was a present")),
         T("b", "Would you like a new one or your money back?", "I can exchange it or refund you.", "Refund or "
           "exchange?"),
         T("a", "My money back, please.", "A refund, please.", "I'd prefer a refund."),
         T("b", "Here's your {price}.", "Done. {price} back on your card.")),
        ("{a} returns {item} because it {fault} and gets a refund of {price}{notes}.",
         "{a} brings back {item} that {fault}. {b} refunds {price}{notes}.",
         "{a}'s {item} {fault}, so {a} returns it with the receipt and gets {price} back{notes}."),
        ("{a} wants to return {item}.", "{a} wants a refund for {item}."),
        (("What does {a} return?", "{item}"), ("What is wrong with it?", "it {fault}"),
         ("How much is refunded?", "{price}")),
        greeting=("Hello, customer service. How can I help?", "Hi, what can I do for you?")),
    Scenario(
        "delivery", ("ordering food", "food delivery", "a takeaway order"),
        {"dish": "dish", "drink": "drink", "street": "street", "minutes": "minutes", "n": "count"},
        (T("a", "Hi, I'd like to order {dish}, please.", "Can I get {dish} delivered?", "I want to order {dish}."),
         T("b", "Sure. Anything to drink?", "Anything else?", "Would you like a drink with that?"),
         T("a", "Yes, {drink}, please.", "{drink} as well.", "And {drink}."),
         T("a", "No onions, please.", "Could you make it extra spicy?", optional=True,
           note=("asks for a change to the dish", "has a special request")),
         T("b", "What's the address?", "Where should we deliver it?", "Your address, please?"),
         T("a", "Number {n}, {street}.", "It's {n} {street}.", "{street}, number {n}."),
         T("b", "It'll be there in about {minutes} minutes.", "About {minutes} minutes.", "Expect it in {minutes} "
           "minutes.")),
        ("{a} orders {dish} and {drink} to {n} {street}; it will arrive in about {minutes} minutes{notes}.",
         "{a} has {dish} and {drink} delivered to {street}, in about {minutes} minutes{notes}.",
         "{b} takes {a}'s order of {dish} with {drink} for delivery to {street} within {minutes} minutes{notes}."),
        ("{a} wants {dish} delivered.", "{a} wants to order food."),
        (("What does {a} order?", "{dish} and {drink}"), ("Where is it delivered?", "to {n} {street}"),
         ("How long will it take?", "about {minutes} minutes")),
        greeting=("Pizza and more, what can I get you?", "Hello, you're through to the takeaway.")),
    Scenario(
        "weekend_plans", ("weekend plans", "making plans with a friend", "meeting a friend"),
        {"activity": "activity", "venue": "venue", "day": "day", "time": "time", "first": "first"},
        (T("a", "Are you free on {day}?", "Hey {first}, what are you doing on {day}?", "Do you have plans for "
           "{day}?"),
         T("b", "Nothing yet. Why?", "Not really. What's up?", "I'm free. Any ideas?"),
         T("a", "Shall we {activity}?", "Let's {activity}.", "I'd love to {activity}. Want to come?"),
         T("b", "Good idea. Where shall we meet?", "Sure! Where do we meet?", "I'm in. Where and when?"),
         T("a", "At {venue}, at {time}.", "How about {venue} at {time}?", "Let's meet at {venue}. {time}?"),
         T("b", "Can I bring my cousin?", "My sister might join us.", optional=True,
           note=("may bring a relative", "might bring someone along")),
         T("b", "Perfect, see you there.", "Great, {time} at {venue} then.", "Deal.")),
        ("{a} and {b} plan to {activity} on {day}, meeting at {venue} at {time}{notes}.",
         "{a} invites {b} to {activity} on {day}; they will meet at {time} at {venue}{notes}.",
         "On {day} {a} and {b} will {activity}. They meet at {venue} at {time}{notes}."),
        ("{a} wants to {activity} with {b}.", "{a} wants to meet {b} on {day}."),
        (("What will they do?", "{activity}"), ("When do they meet?", "at {time} on {day}"),
         ("Where do they meet?", "at {venue}")),
        b_opens=0.0),
    Scenario(
        "library", ("borrowing a book", "at the library", "library loan"),
        {"subject": "subject", "n": "count", "day": "day"},
        (T("a", "Hi, I'm looking for books about {subject}.", "Where can I find books on {subject}?",
           "Do you have anything on {subject}?"),
         T("b", "They're on the second floor.", "Aisle {n}, on the left.", "Let me show you. Here they are."),
         T("a", "Thanks. Can I borrow {n} of them?", "I'd like to take {n} books.", "Can I check out {n}?"),
         T("b", "Yes. Do you have a library card?", "Sure. Your card, please.", "Of course. Card?"),
         T("a", "Here it is.", "Yes, here you are.", "I forgot it, but here's my ID."),
         T("a", "Can I renew them online?", "What if I need them longer?", optional=True,
           note=("asks about renewing them", "asks how to renew them")),
         T("b", "Please return them by {day}.", "They're due back on {day}.", "You have them until {day}.")),
        ("{a} borrows {n} books about {subject} that are due back on {day}{notes}.",
         "{a} asks {b} for books on {subject} and borrows {n} of them until {day}{notes}.",
         "At the library, {a} checks out {n} books on {subject}, to return by {day}{notes}."),
        ("{a} wants books about {subject}.", "{a} wants to borrow books on {subject}."),
        (("What are the books about?", "{subject}"), ("How many books does {a} borrow?", "{n}"),
         ("When are they due?", "on {day}")),
        greeting=("Hello, can I help you find something?", "Good afternoon, welcome to the library.")),
    Scenario(
        "car_rental", ("renting a car", "car rental", "hiring a car"),
        {"car": "car", "n": "days_n", "day": "day", "price": "price", "city": "city"},
        (T("a", "Hi, I'd like to rent {car} for {n} days.", "I need {car} for {n} days, please.",
           "Do you have {car} for {n} days?"),
         T("b", "When would you like to pick it up?", "From which day?", "Certainly. Starting when?"),
         T("a", "On {day} morning.", "This {day}.", "From {day}, please."),
         T("b", "That's {price} a day, insurance included.", "It comes to {price} per day.", "{price} a day."),
         T("a", "Can I drop it off in {city}?", "Could I return it in {city}?", optional=True,
           note=("asks to return it in {city}", "wants to drop it off in {city}")),
         T("a", "Okay, I'll take it.", "Fine, book it please.", "Sounds good."),
         T("b", "Great. Bring your licence on {day}.", "Done. See you on {day} with your licence.")),
        ("{a} rents {car} for {n} days from {day} at {price} a day{notes}.",
         "{a} books {car} for {n} days, picking it up on {day}, for {price} per day{notes}.",
         "{b} rents {a} {car} at {price} a day for {n} days starting {day}{notes}."),
        ("{a} wants to rent {car}.", "{a} needs a car for {n} days."),
        (("What does {a} rent?", "{car}"), ("For how many days?", "{n} days"), ("How much is it a day?", "{price}"),
         ("When does {a} pick it up?", "on {day}")),
        greeting=("Welcome to City Car Rental.", "Hello, how can I help you today?")),
    Scenario(
        "haircut", ("a haircut appointment", "booking a haircut", "going to the hairdresser"),
        {"style": "haircut", "day": "day", "time": "time", "first": "first"},
        (T("a", "Hi, can I book an appointment for {style}?", "Hello, I'd like {style}.", "Do you have time for "
           "{style} this week?"),
         T("b", "Sure. When suits you?", "What day works for you?", "Of course. Which day?"),
         T("a", "{day}, if possible.", "How about {day}?", "Is {day} okay?"),
         T("b", "{first} is free on {day} at {time}.", "We have {time} on {day} with {first}.", "{time} on {day}?"),
         T("a", "That's great.", "Perfect, {time} it is.", "Yes, please."),
         T("a", "How much will it be?", "What's the price?", optional=True,
           note=("asks about the price", "checks the price")),
         T("b", "See you on {day} at {time}.", "Booked. See you then.")),
        ("{a} books {style} on {day} at {time}{notes}.",
         "{a} makes a hairdresser's appointment for {style} on {day} at {time}{notes}.",
         "{b} books {a} in for {style} at {time} on {day}{notes}."),
        ("{a} wants {style}.", "{a} wants a hairdresser's appointment."),
        (("What does {a} want done?", "{style}"), ("When is the appointment?", "on {day} at {time}")),
        greeting=("Hello, Hair Studio.", "Good morning, salon, how can I help?")),
)
# What people say around the point of a conversation: never in a summary.
SMALL_TALK = (
    ("Lovely weather today, isn't it?", "Yes, finally some sun."),
    ("How was your weekend?", "Quiet, thanks. I read a lot."),
    ("Did you watch the match on {day}?", "No, I missed it."),
    ("My cousin {first} says hello.", "Oh, say hi back."),
    ("Sorry, my phone is ringing.", "No problem, take your time."),
    ("It's so busy today.", "Yes, it's always like this on {day}."),
)
